# The example is a package of its own: importable from its folder when it is not installed (here and in the
# worker processes the tests start). Its end-to-end test reuses the Vigie checkout's integration fixtures
# (broker and ClickHouse on free ports), two folders up.
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])

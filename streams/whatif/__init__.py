"""What-if: real calls re-run under other engagement hypotheses (README "What-if"), in plain Python, no Kafka."""

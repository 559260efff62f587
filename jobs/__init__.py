"""Spark jobs: pure DataFrame -> DataFrame transforms plus thin entry points that run under spark-submit."""

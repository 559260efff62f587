"""The floor of any Spark job here: start a local session as enumwatch does, count one file's lines, stop.

Usage: floor.py FILE. `make bench` times it as a whole process, beside one incremental enumwatch run.
"""

import sys

from core.settings import load_settings
from jobs.session import get_spark


def main(path: str) -> None:
    spark = get_spark(load_settings(), "enumwatch-floor")
    print(spark.read.text(path).count())
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])

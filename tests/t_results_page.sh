#!/bin/sh
# The paired-study statistics of jobs/results_page.py (t interval, the defaults rule, a row of
# the defaults table) against hand-computed cases: tests/results_page_stats.py.
exec /usr/bin/python3 "$(dirname "$0")/results_page_stats.py"

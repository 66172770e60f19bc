# The closing line of every test program and suite: "N passed, N failed" or, when some checks
# could not run here, "N passed, N failed, N skipped" (each skip also printed as "SKIP name:
# reason"). count_summary LINE sets sum_p, sum_f and sum_s; sum_p is empty when LINE is not one.
count_summary() {
    _re='^\([0-9]*\) passed, \([0-9]*\) failed\(, \([0-9]*\) skipped\)\{0,1\}$'
    sum_p=$(echo "$1" | sed -n "s/$_re/\1/p")
    sum_f=$(echo "$1" | sed -n "s/$_re/\2/p")
    sum_s=$(echo "$1" | sed -n "s/$_re/\4/p")
    sum_s=${sum_s:-0}
}

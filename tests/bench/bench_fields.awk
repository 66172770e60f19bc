# Reading the "BENCH {json}" lines of the benchmark programs (run.sh, bench_imagenet.sh put
# this in front of their table programs). field(s, k): the value of key k in the flat JSON
# object s, quotes removed, "" when absent. num(v, fmt): v formatted, "n/a" when empty.
function field(s, k,    r) {
    if (!match(s, "\"" k "\":(\"[^\"]*\"|[^,}]*)")) return ""
    r = substr(s, RSTART + length(k) + 3, RLENGTH - length(k) - 3)
    gsub(/"/, "", r)
    return r
}
function num(v, fmt) { return v == "" ? "n/a" : sprintf(fmt, v) }

# Sourced by jobs/sweep.sbatch, jobs/local.sh and jobs/submit.sh: a plan line may start with a
# job shape, `@nodes=N tasks=T threads=C` (any of the three; tasks: MPI ranks in all, threads:
# per rank), before its `cigl train` arguments:
#
#   @nodes=2 tasks=2 threads=4 --model resnet20 --data data/fashion-mnist.h5 --out runs/n2
#
# plan_shape LINE sets shape_nodes, shape_tasks, shape_threads (empty when not given) and
# shape_rest (the line without the shape); it returns 1 with a message in shape_error when the
# shape is malformed.
plan_shape() {
    shape_nodes=""; shape_tasks=""; shape_threads=""; shape_error=""
    local l=${1#"${1%%[![:space:]]*}"} w k v
    shape_rest=$l
    case "$l" in @*) l=${l#@} ;; *) return 0 ;; esac
    while [ -n "$l" ]; do
        w=${l%%[[:space:]]*}
        case "$w" in -*|'') break ;; esac
        k=${w%%=*}; v=${w#*=}
        case "$v" in
            ''|*[!0-9]*|0*) shape_error="'$w': expected KEY=N with N >= 1"; return 1 ;;
        esac
        case "$k" in
            nodes) shape_nodes=$v ;;
            tasks) shape_tasks=$v ;;
            threads) shape_threads=$v ;;
            *) shape_error="unknown shape key '$k' (nodes, tasks, threads)"; return 1 ;;
        esac
        l=${l#"$w"}; l=${l#"${l%%[![:space:]]*}"}
    done
    [ -n "$shape_nodes$shape_tasks$shape_threads" ] || { shape_error="empty shape '@'"; return 1; }
    shape_rest=$l
}

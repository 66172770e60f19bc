#!/bin/sh
# The documentation keeps up with the code:
# - every option that `cigl train --help`, `cigl eval --help`, `cigl report --help` and
#   `cigl convert --help` print is named in docs/cli.md (one check per option, so a new option
#   fails with its own name);
# - every relative link in README.md and docs/*.md points at a file that exists (and, for a
#   link into a markdown page with #anchor, at one of its headings);
# - every src/... and include/... path named in README.md and docs/*.md exists.
. tests/lib.sh

if [ ! -x "$CIGL" ]; then
    bad "missing $CIGL: run make"
    summary; exit 1
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# Options as the help texts print them: "  --name ..." at the start of a line for train, eval
# and report; every --name token of convert's usage lines.
for cmd in train eval report convert; do
    "$CIGL" $cmd --help >"$T/$cmd.txt" 2>&1
    if [ "$cmd" = convert ]; then
        grep -o -- '--[a-z][a-z0-9-]*' "$T/$cmd.txt"
    else
        sed -n 's/^ *\(--[a-z][a-z0-9-]*\).*/\1/p' "$T/$cmd.txt"
    fi | sort -u >"$T/$cmd.opts"
    check "cigl $cmd --help prints options" "[ -s '$T/$cmd.opts' ]"
    while read -r opt; do
        [ "$opt" = --help ] && [ "$cmd" != report ] && continue
        # named in backquotes, alone or followed by its argument: `--lr N`, `--flip`
        if grep -q -- "\`$opt[\` ]" docs/cli.md; then
            ok "docs/cli.md documents cigl $cmd $opt"
        else
            bad "docs/cli.md does not document cigl $cmd $opt (add it to the $cmd section)"
        fi
    done <"$T/$cmd.opts"
done

# Links and paths: the Python below prints one "ok NAME" or "FAIL NAME" line per check.
"$PY" - README.md docs/*.md >"$T/links.txt" <<'EOF'
import os, re, sys

def slug(heading):
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")

def anchors(path):
    out = set()
    in_code = False
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out

link = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
path = re.compile(r"(?<![\w./-])((?:src|include)/[A-Za-z0-9_./-]*[A-Za-z0-9_])([<*]?)")
for doc in sys.argv[1:]:
    base = os.path.dirname(doc)
    text = open(doc, encoding="utf-8").read()
    for target in sorted(set(link.findall(text))):
        if re.match(r"^[a-z]+:", target):
            continue  # http:, https:, mailto:
        file, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(base, file)) if file else doc
        name = f"{doc} links to {target}"
        if not os.path.exists(dest):
            print(f"FAIL {name} (no {dest})")
        elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
            print(f"FAIL {name} (no heading #{anchor} in {dest})")
        else:
            print(f"ok {name}")
    for p, tail in sorted(set(path.findall(text))):
        if tail:
            continue  # a pattern such as src/*/*.c or fuzz_<name>.c
        name = f"{doc} names {p}"
        print(f"ok {name}" if os.path.exists(p) else f"FAIL {name} (no such path)")
EOF
check "link and path checker ran" "[ -s '$T/links.txt' ]"
while IFS= read -r line; do
    case "$line" in
        "ok "*) ok "${line#ok }" ;;
        *) bad "${line#FAIL }" ;;
    esac
done <"$T/links.txt"
summary

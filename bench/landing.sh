#!/usr/bin/env bash
# The git steps of one gitforge landing, done with the git CLI (bench_landing.py's baseline).
# Usage: landing.sh REPO WORKTREE PATCH N   (lands PATCH on main; prints a time mark per stage)
# The squash lands as gitforge lands it: commit-tree on the candidate's tree, compare-and-swap
# update-ref of main, read-tree -m -u to bring the checkout of main up to date.
set -euo pipefail
repo=$1 wt=$2 patch=$3 n=$4
echo "start $EPOCHREALTIME"
git -C "$repo" worktree add -q -b "bench/$n" "$wt" main
echo "add $EPOCHREALTIME"
git -C "$wt" apply --index "$patch"
(cd "$wt" && true)
git -C "$wt" commit -q -m "bench candidate $n"
old=$(git -C "$repo" rev-parse main)
new=$(git -C "$repo" commit-tree -p "$old" -m "Bench edit $n (squash)" "bench/$n^{tree}")
git -C "$repo" update-ref -m "bench: squash $n" refs/heads/main "$new" "$old"
git -C "$repo" read-tree -m -u "$old" "$new"
git -C "$repo" notes --ref=forge/runs add -m "{\"run\": $n, \"status\": \"landed\"}" "$new"
echo "land $EPOCHREALTIME"
git -C "$repo" worktree remove "$wt"
git -C "$repo" branch -q -D "bench/$n"
echo "remove $EPOCHREALTIME"

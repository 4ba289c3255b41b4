#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# test-deb.sh - builds the Debian package from this tree and proves it in a
# fresh Debian 12 root: installed with dpkg, the sysusers, tmpfiles and
# logrotate files do their work, `agentpoold --check-config` accepts the
# packaged sample config, agentpoold runs as the agentpool user, and a
# client in the agentpool group gets a round trip through `agentpoolctl
# send` on /run/agentpool/agentpool.sock (one outside the group is refused).
#
# Run by `./bootstrap test` after the suite (it needs root: mount and
# chroot).  Slow, so not part of `make check`.  The Debian root is made once
# with debootstrap (with the package's run-time dependencies) and kept in
# $AP_DEB_CACHE (default /var/cache/agentpool-test), outside the tree; each
# run works on an overlay of it, so the cached root stays fresh.  Prints
# "package: PASS" or "package: FAIL: reason" and exits 0 or 1 (77, the
# automake skip code, when it cannot run here: not root, no debootstrap).
# AP_DEB_KEEP=1 keeps the work directory (build log, root) for a look.
set -eu

src=$(cd "$(dirname "$0")/../.." && pwd)
cache=${AP_DEB_CACHE:-/var/cache/agentpool-test}
mirror=${AP_DEB_MIRROR:-http://deb.debian.org/debian}
# Run-time dependencies, preinstalled so the test needs no network once
# the root is cached; the name changes when the list does.
include="python3,libpython3.11,libevent-2.1-7,libevent-pthreads-2.1-7,libcjson1,libjemalloc2,libsqlite3-0,libhiredis0.14,libnettle8,systemd,logrotate"
base="$cache/bookworm-$(printf %s "$include" | md5sum | cut -c1-8)"
start=$(date +%s)

say() { printf 'test-deb: %s\n' "$*" >&2; }
fail() { echo "package: FAIL: $*"; exit 1; }

if [ "$(id -u)" != 0 ]; then echo "package: SKIP (needs root for mount and chroot)"; exit 77; fi
for t in dpkg-buildpackage debootstrap; do
    command -v "$t" >/dev/null || { echo "package: SKIP ($t is not installed)"; exit 77; }
done

work=$(mktemp -d /tmp/aptest-deb-XXXXXX)
root="$work/root"
daemon=""
cleanup() {
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && sleep 1
    mountpoint -q "$root/proc" 2>/dev/null && umount "$root/proc"
    mountpoint -q "$root" 2>/dev/null && umount "$root"
    if [ -n "${AP_DEB_KEEP:-}" ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

# 1. The package, built from a copy of the tree (dpkg-buildpackage writes
#    next to the source, and must not see build directories).
say "building the package"
mkdir "$work/agentpool"
(cd "$src" && tar cf - --exclude=.git --exclude=autom4te.cache \
    $(for d in */; do [ -f "$d/config.status" ] && printf -- '--exclude=./%s ' "${d%/}"; done) .) |
    (cd "$work/agentpool" && tar xf -)
(cd "$work/agentpool" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 ||
    { tail -n 40 "$work/build.log"; fail "dpkg-buildpackage failed"; }
deb=$(ls "$work"/agentpool_*.deb) || fail "no .deb was built"
built=$(date +%s)

# 2. A Debian 12 root: cached, used through an overlay.
if [ ! -d "$base" ]; then
    say "debootstrap bookworm into $base (once)"
    rm -rf "$base.tmp"; mkdir -p "$cache"
    debootstrap --variant=minbase --include="$include" bookworm "$base.tmp" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 20 "$work/debootstrap.log"; fail "debootstrap failed"; }
    mv "$base.tmp" "$base"
fi
mkdir -p "$root" "$work/upper" "$work/ovwork"
mount -t overlay overlay -o "lowerdir=$base,upperdir=$work/upper,workdir=$work/ovwork" "$root" ||
    fail "cannot mount an overlay of $base"
mount -t proc proc "$root/proc"
in_root() { chroot "$root" "$@"; }

# 3. Install it with dpkg: the postinst runs systemd-sysusers and
#    systemd-tmpfiles (no systemd runs in the chroot: units are enabled only).
cp "$deb" "$root/tmp/"
in_root dpkg -i "/tmp/$(basename "$deb")" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i failed"; }
in_root id agentpool >/dev/null || fail "the agentpool user was not created"
[ "$(in_root stat -c '%U:%G %a' /run/agentpool)" = "agentpool:agentpool 750" ] || fail "/run/agentpool: $(in_root stat -c '%U:%G %a' /run/agentpool)"
[ "$(in_root stat -c '%U %a' /var/lib/agentpool)" = "agentpool 700" ] || fail "/var/lib/agentpool not made"
for f in /usr/bin/agentpoold /usr/bin/agentpoolctl /usr/lib/python3/dist-packages/pyagents/__init__.py \
         /lib/systemd/system/agentpoold.service /lib/systemd/system/agentpoold.socket \
         /usr/lib/sysusers.d/agentpool.conf /usr/lib/tmpfiles.d/agentpool.conf \
         /etc/agentpool/agentpool.json /etc/logrotate.d/agentpoold \
         /usr/share/man/man8/agentpoold.8.gz /usr/share/man/man1/agentpoolctl.1.gz \
         /usr/share/bash-completion/completions/agentpoolctl /usr/share/doc/agentpool/copyright; do
    [ -e "$root$f" ] || fail "$f is not installed"
done
grep -q '^ExecStart=/usr/bin/agentpoold ' "$root/lib/systemd/system/agentpoold.service" || fail "ExecStart is not /usr/bin/agentpoold"
[ -L "$root/etc/systemd/system/sockets.target.wants/agentpoold.socket" ] || fail "agentpoold.socket is not enabled"
in_root logrotate -d /etc/logrotate.d/agentpoold >"$work/logrotate.log" 2>&1 || fail "logrotate -d failed"
! grep -q '^error' "$work/logrotate.log" || { cat "$work/logrotate.log"; fail "logrotate -d reports errors"; }

# 4. The packaged config, checked and served as the agentpool user.
out=$(in_root agentpoold --check-config --config /etc/agentpool/agentpool.json 2>&1) ||
    fail "agentpoold --check-config: $out"
say "$out"
# metricsListen off: the chroot shares the host's network.
chroot --userspec=agentpool:agentpool "$root" /usr/bin/agentpoold --config /etc/agentpool/agentpool.json \
    --metrics-listen "" >"$work/agentpoold.out" 2>&1 &
daemon=$!
i=0
until in_root agentpoolctl -s /run/agentpool/agentpool.sock ping >/dev/null 2>&1; do
    i=$((i + 1))
    kill -0 "$daemon" 2>/dev/null || { cat "$work/agentpoold.out" "$root/var/log/agentpool/agentpoold.log" 2>/dev/null; fail "agentpoold exited"; }
    [ "$i" -lt 600 ] || fail "agentpoold was not ready after 60 s"
    sleep 0.1
done
in_root useradd -m alice
in_root useradd -m mallory
in_root usermod -aG agentpool alice
answer=$(chroot --userspec=alice --groups=agentpool "$root" agentpoolctl -s /run/agentpool/agentpool.sock \
    send echo '{"hello":"world"}') || fail "agentpoolctl send as alice (group agentpool) failed"
[ "$answer" = '{"id":1,"ok":true,"result":{"hello":"world"}}' ] || fail "unexpected answer: $answer"
rc=0
chroot --userspec=mallory "$root" agentpoolctl -s /run/agentpool/agentpool.sock ping >/dev/null 2>&1 || rc=$?
[ "$rc" = 3 ] || fail "a user outside the agentpool group got exit $rc, not 3 (cannot connect)"
kill -TERM "$daemon"
wait "$daemon" || fail "agentpoold exited $? on SIGTERM"
daemon=""
grep -q "ready" "$root/var/log/agentpool/agentpoold.log" || fail "nothing in /var/log/agentpool/agentpoold.log"

end=$(date +%s)
echo "package: PASS (built in $((built - start)) s, installed and served in $((end - built)) s)"

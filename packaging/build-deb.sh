#!/usr/bin/env bash
# Build the Debian package of ipmp from this repository: dist/ipmp_VERSION-1_all.deb
#
#   packaging/build-deb.sh [OUTPUT_DIR]
#
# The package bundles a virtual environment under /opt/ipmp, made with the
# host's Debian interpreter (/usr/bin/python3.X, not a pyenv or other build),
# holding ipmp and its pure-Python dependencies from PyPI (pyroute2 >= 0.9.5,
# which Debian 12 does not have, and prometheus_client for --metrics). The
# commands are symlinks into it: in.mpathd and if_mpadm in /usr/sbin, ipmpstat
# and ipmp in /usr/bin. See packaging/README.md for why this layout.
#
# Needs: /usr/bin/python3 (Debian's python3, >= 3.11; the venv module is
# enough, python3-venv is not needed since the environment gets no pip),
# a python3 with pip >= 22.3 (--python) to install into it, dpkg-deb, gzip.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/dist}
host_python=/usr/bin/python3
pip_python=${PIP_PYTHON:-python3}   # any python3 with pip: it only installs

die() { echo "build-deb.sh: $*" >&2; exit 1; }

[ -x "$host_python" ] || die "$host_python is missing: apt-get install python3"
# The venv must point at a versioned interpreter: if python3 later means a
# newer Python, /usr/bin/python3.11 (and this package's dependency) stays.
interpreter=$(readlink -f "$host_python")
pyver=$("$interpreter" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
"$interpreter" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$interpreter is Python $pyver; ipmp needs 3.11 or newer"
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing: apt-get install dpkg"

work=$(mktemp -d "${TMPDIR:-/tmp}/ipmp-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/root
venv=$stage/opt/ipmp

# 1. The environment, built where it will live, relative to the staging root,
# from a copy of the tree: setuptools would leave build/ in the checkout, and a
# stale build/ can carry removed modules into the next package.
mkdir "$work/src"
tar -C "$repo" --exclude=./.git --exclude=./build --exclude=./dist --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=.venv -cf - . | tar -C "$work/src" -xf -
"$interpreter" -m venv --without-pip "$venv"
"$pip_python" -m pip --python "$venv/bin/python" install \
    --quiet --disable-pip-version-check --no-compile --no-warn-script-location \
    "$work/src[metrics]"
# The scripts pip wrote name the staging path: point them at /opt/ipmp, and
# run isolated (-I) so that PYTHONPATH or a user's site-packages can never
# replace the code a root daemon runs.
for script in "$venv"/bin/*; do
    [ -L "$script" ] && continue
    if head -c 2 "$script" | grep -q '^#!'; then
        sed -i "1s|^#!.*|#!/opt/ipmp/bin/python -I|" "$script"
    fi
done
rm -f "$venv"/bin/activate* "$venv"/bin/Activate.ps1
# The wheel's share/man/man8 copies: the package installs them gzipped in /usr/share/man.
rm -rf "$venv/share/man"
rmdir --ignore-fail-on-non-empty "$venv/share"
sed -i "s|$stage||g" "$venv/pyvenv.cfg"
if grep -rIl --exclude-dir=__pycache__ "$stage" "$venv" >/dev/null; then
    die "the staging path is still named in: $(grep -rIl "$stage" "$venv" | head -3)"
fi
version=$("$venv/bin/python" -I -c 'import importlib.metadata as m; print(m.version("ipmp"))')
# Compiled extensions would tie the package to this architecture.
if find "$venv" -name '*.so' | grep -q .; then
    arch=$(dpkg --print-architecture)
else
    arch=all
fi

# 2. Commands, unit, configuration, man pages, documentation.
install -d "$stage/usr/sbin" "$stage/usr/bin"
for command in in.mpathd if_mpadm; do
    ln -s "/opt/ipmp/bin/$command" "$stage/usr/sbin/$command"
done
for command in ipmpstat ipmp; do
    ln -s "/opt/ipmp/bin/$command" "$stage/usr/bin/$command"
done
install -D -m 644 "$repo/contrib/systemd/in.mpathd.service" \
    "$stage/lib/systemd/system/in.mpathd.service"
install -D -m 644 "$repo/packaging/debian/mpathd" "$stage/etc/default/mpathd"
install -d "$stage/usr/share/man/man8"
for page in "$repo"/src/ipmp/man/*.8; do
    gzip -9n < "$page" > "$stage/usr/share/man/man8/$(basename "$page").gz"
done
doc=$stage/usr/share/doc/ipmp
install -d "$doc/examples"
install -m 644 "$repo"/src/ipmp/examples/*.toml "$doc/examples/"
install -m 644 "$repo/README.md" "$doc/README.md"
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: ipmp"
    echo
    echo "Files: *"
    echo "Copyright: 2026 The ipmp developers"
    echo "License: MIT"
    sed 's/^$/./; s/^/ /' "$repo/LICENSE"
    echo
    echo "Files: opt/ipmp/lib/python$pyver/site-packages/*"
    echo "Comment: bundled Python packages; each one's licence is in its .dist-info"
    echo " directory (pyroute2: GPL-2.0-or-later or Apache-2.0; prometheus_client:"
    echo " Apache-2.0)."
} > "$doc/copyright"

# 3. Control files.
install -d "$stage/DEBIAN"
install -m 755 "$repo"/packaging/debian/{postinst,prerm,postrm} "$stage/DEBIAN/"
echo /etc/default/mpathd > "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: ipmp
Version: $version-1
Architecture: $arch
Maintainer: The ipmp developers <ipmp@invalid>
Installed-Size: $size
Depends: python$pyver
Recommends: iproute2
Section: net
Priority: optional
Description: IP network multipathing (Solaris 10 IPMP) for Linux
 in.mpathd detects failures of the interfaces of an IPMP group by link
 state and ICMP probes and moves their addresses to a working member, as
 the Solaris 10 daemon does; if_mpadm, ipmpstat and ipmp (Solaris
 ifconfig) are its clients. Includes a hardened systemd unit and an
 embedded simulated Solaris host for trying it without spare NICs.
 .
 Bundles its Python dependencies in a virtual environment under /opt/ipmp.
CONTROL

mkdir -p "$out"
deb=$out/ipmp_${version}-1_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"

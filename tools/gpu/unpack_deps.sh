#!/usr/bin/env bash
# Unpacks Reel's Debian 12 dependency packages (.gpu/debs/*.deb, and .gpu/debs-ffmpeg/*.deb when
# present) into PREFIX without installing anything system-wide, for a machine that has a compiler,
# CMake and LibTorch but none of Open MPI, parallel HDF5, yaml-cpp, nlohmann-json, GoogleTest,
# FFmpeg or pkg-config. Then it makes the tree usable from PREFIX:
#   - absolute symlinks (/usr/..., /etc/...) are re-pointed into PREFIX, /lib merged into /usr/lib;
#   - the update-alternatives names dpkg -x does not create (mpicc, mpirun, mpiexec, h5pcc,
#     hdf5.pc, mpi.pc, /usr/include/<arch>/mpi, libmpi.so) are created as symlinks;
#   - hard-coded /usr paths in pkg-config files, the h5pcc/h5pfc wrappers and PMIx's MCA
#     parameter file are rewritten to PREFIX/usr, and h5pcc links shared by default (the trimmed
#     libhdf5-openmpi-dev has no static archives); Open MPI and PMIx relocate through
#     OPAL_PREFIX, OPAL_SYSCONFDIR, PMIX_SYSCONFDIR, PMIX_DATADIR and
#     PMIX_MCA_mca_base_component_path (set in env.sh);
#   - the link-time names h5pcc asks for (-lcrypto -lcurl -lsz -lz) get libX.so symlinks;
#   - Open MPI / PMIx plugins whose libraries are not shipped (InfiniBand verbs, UCX, libfabric,
#     PSM, netlink) are moved to PREFIX/disabled-plugins, so that single-node runs stay quiet;
#   - helper libraries the machine already has under the same soname (libssl, libcurl, libxml2,
#     glib, ...) are moved to PREFIX/shadowed so that the machine's newer copies are used and the
#     prefix does not shadow them for every program; the MPI, HDF5, yaml-cpp and FFmpeg libraries
#     themselves are always kept. If the machine's copies turn out not to satisfy our libraries
#     (ldd -r), everything is put back. REEL_DEPS_PRUNE=0 turns this off.
# It writes PREFIX/env.sh (source it) and PREFIX/cmake_args.txt (extra -D options for cmake).
#
# Usage: tools/gpu/unpack_deps.sh PREFIX [DEBDIR...]
#   e.g. tools/gpu/unpack_deps.sh /opt/reel-deps && . /opt/reel-deps/env.sh &&
#        cmake -S . -B build -G Ninja $(cat /opt/reel-deps/cmake_args.txt) ...
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 PREFIX [DEBDIR...]" >&2
  exit 2
fi
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1"
P=$(cd "$1" && pwd -P)
shift
if [ $# -gt 0 ]; then
  debdirs=("$@")
else
  debdirs=()
  for d in "$repo/.gpu/debs" "$repo/.gpu/debs-ffmpeg"; do
    [ -d "$d" ] && debdirs+=("$d")
  done
fi
[ ${#debdirs[@]} -gt 0 ] || { echo "unpack_deps: no .deb folder (looked for $repo/.gpu/debs)" >&2; exit 1; }

if [ -n "$(ls -A "$P")" ] && [ ! -e "$P/.reel-deps" ]; then
  echo "unpack_deps: $P is not empty and was not made by this script; refusing to touch it" >&2
  exit 1
fi
[ -e "$P/.reel-deps" ] && find "$P" -mindepth 1 -delete
touch "$P/.reel-deps"

ARCH=x86_64-linux-gnu
U=$P/usr
L=$U/lib/$ARCH
say() { echo "unpack_deps: $*"; }
LDCONFIG=$(command -v ldconfig || echo /sbin/ldconfig)

# 1. Unpack; /lib is merged into /usr/lib (a few Debian 12 packages still ship /lib files).
n=0
for d in "${debdirs[@]}"; do
  for deb in "$d"/*.deb; do
    [ -e "$deb" ] || continue
    dpkg-deb -x "$deb" "$P"
    n=$((n + 1))
  done
done
mkdir -p "$U/lib"
if [ -d "$P/lib" ] && [ ! -L "$P/lib" ]; then
  cp -a "$P/lib/." "$U/lib/"
  rm -rf "$P/lib"
fi
ln -sfn usr/lib "$P/lib"
say "unpacked $n packages from ${debdirs[*]} into $P"

# 2. Absolute symlinks -> inside PREFIX.
while IFS= read -r -d '' link; do
  t=$(readlink "$link")
  case "$t" in "$P"/*) continue ;; esac
  ln -sfn "$P$t" "$link"
done < <(find "$P" -type l -lname '/*' -print0)

# 3. update-alternatives names (from the postinst scripts of openmpi-bin, libopenmpi-dev,
#    libhdf5-openmpi-dev). alt LINK TARGET: LINK -> TARGET (relative to LINK's folder) if TARGET exists.
alt() {
  local link=$P$1 target=$2
  [ -e "$(dirname "$link")/$target" ] || return 0
  mkdir -p "$(dirname "$link")"
  ln -sfn "$target" "$link"
}
alt /usr/bin/mpirun mpirun.openmpi
alt /usr/bin/mpiexec mpiexec.openmpi
alt /usr/bin/mpicc mpicc.openmpi
alt /usr/bin/mpic++ mpic++.openmpi
alt /usr/bin/mpicxx mpic++.openmpi
alt /usr/bin/mpiCC mpic++.openmpi
alt /usr/bin/mpif77 mpif77.openmpi
alt /usr/bin/mpif90 mpif90.openmpi
alt /usr/bin/mpifort mpifort.openmpi
alt /usr/bin/h5pcc h5pcc.openmpi
alt /usr/bin/h5pfc h5pfc.openmpi
alt /usr/include/$ARCH/mpi ../../lib/$ARCH/openmpi/include
alt /usr/lib/$ARCH/libmpi.so openmpi/lib/libmpi.so
alt /usr/lib/$ARCH/libmpi++.so openmpi/lib/libmpi_cxx.so
for pc in mpi:ompi mpi-c:ompi-c mpi-cxx:ompi-cxx mpi-fort:ompi-fort hdf5:hdf5-openmpi hdf5-mpi:hdf5-openmpi; do
  alt "/usr/lib/$ARCH/pkgconfig/${pc%%:*}.pc" "${pc#*:}.pc"
done

# 4. Hard-coded /usr paths in text files.
while IFS= read -r -d '' pc; do
  [ -L "$pc" ] && continue
  sed -i -E "s#(^|[=[:space:]\"']|-I|-L|-Wl,-rpath,)/usr(/|\$|[[:space:]])#\1$U\2#g" "$pc"
done < <(find "$P" -name '*.pc' -print0)
for w in "$U"/bin/h5pcc.openmpi "$U"/bin/h5pfc.openmpi "$U"/bin/h5c++.openmpi; do
  [ -f "$w" ] || continue
  sed -i -E "s#^prefix=\"/usr\"#prefix=\"$U\"#" "$w"
  # The trimmed libhdf5-openmpi-dev has no static archives: link shared by default (FindHDF5
  # test-compiles with plain "h5pcc file.c").
  [ -e "$L/libhdf5_openmpi.a" ] || sed -i 's#^STATIC_AVAILABLE="yes"#STATIC_AVAILABLE="no"#' "$w"
done
if [ -f "$L/pmix2/share/pmix-mca-params.conf" ]; then
  sed -i "s#/usr/lib/$ARCH/pmix2#$L/pmix2#g" "$L/pmix2/share/pmix-mca-params.conf"
fi

LIBPATH=$L
[ -d "$L/pmix2/lib" ] && LIBPATH=$LIBPATH:$L/pmix2/lib
export LD_LIBRARY_PATH=$LIBPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
LDD_BAD='not found|file too short|error while loading|wrong ELF|cannot open'
elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]; }

# 5. Plugins whose dependencies are not shipped -> PREFIX/disabled-plugins (with the Open MPI
#    helper libraries only those plugins use: libmca_common_{ucx,verbs,ofi}).
disabled=()
for dir in "$L/openmpi/lib/openmpi3" "$L/pmix2/lib/pmix" "$L"/gdk-pixbuf-2.0/*/loaders "$L"; do
  [ -d "$dir" ] || continue
  for so in "$dir"/*.so "$dir"/libmca_common_*.so.*; do
    [ -f "$so" ] && [ ! -L "$so" ] || continue
    case "$dir:$so" in "$L:$L"/*.so) continue ;; esac
    if { ldd "$so" 2>&1 || true; } | grep -E "$LDD_BAD" >/dev/null; then
      rel=${so#"$P"/}
      mkdir -p "$P/disabled-plugins/$(dirname "$rel")"
      mv "$so" "$P/disabled-plugins/$rel"
      disabled+=("$(basename "$so")")
    fi
  done
done
[ ${#disabled[@]} -gt 0 ] && say "disabled ${#disabled[@]} plugins with unshipped dependencies: ${disabled[*]}"

# 6. Helper libraries the machine already has -> PREFIX/shadowed (see the header).
KEEP='^lib(mpi|mpi_|open-rte|open-pal|mca_common|ompitrace|oshmem|pmix|hwloc|event|munge|hdf5|yaml-cpp|avcodec|avformat|avutil|avdevice|avfilter|swscale|swresample|postproc|pkgconf)[-._]'
KEY_LIBS=()
for f in "$L"/libmpi.so.40 "$L"/libhdf5_openmpi.so.103 "$L"/libhdf5_openmpi_hl.so.100 \
         "$L"/libyaml-cpp.so.0.7 "$L"/libavformat.so.59 "$L"/libavcodec.so.59 "$L"/libavutil.so.57 \
         "$L"/libswscale.so.6 "$L"/libswresample.so.4; do
  [ -e "$f" ] && KEY_LIBS+=("$f")
done
ldd_errors() {  # symbol, version and missing-library errors of our key libraries
  local f
  for f in "${KEY_LIBS[@]}"; do ldd -r "$f" 2>&1 | grep -E "$LDD_BAD|undefined symbol" || true; done | sort -u
}
cache=$("$LDCONFIG" -p 2>/dev/null | awk '/x86-64/ {print $1, $NF}' || true)
syslib() { awk -v n="$1" '$1 == n {print $2; exit}' <<<"$cache"; }  # the machine's copy of a soname
shadowed=()
if [ "${REEL_DEPS_PRUNE:-1}" != 0 ] && [ -n "$cache" ]; then
  for lib in "$L"/lib*.so.*; do
    name=$(basename "$lib")
    [[ $name =~ $KEEP ]] && continue
    sys=$(syslib "$name")
    [ -n "$sys" ] || continue
    real=$(readlink -f "$sys")
    case "$real" in "$P"/*) continue ;; esac
    [ -s "$real" ] && elf "$real" || continue
    mkdir -p "$P/shadowed"
    own=$(readlink -f "$lib")
    mv "$lib" "$P/shadowed/"
    case "$own" in "$L"/*) [ -e "$own" ] && mv "$own" "$P/shadowed/" ;; esac
    shadowed+=("$name")
  done
  if [ ${#shadowed[@]} -gt 0 ]; then
    errs=$(ldd_errors)
    if [ -n "$errs" ]; then
      say "the machine's copies of ${shadowed[*]} do not satisfy our libraries; keeping ours:"
      echo "$errs" | head -n 6 | sed 's/^/    /'
      mv "$P"/shadowed/* "$L"/
      rmdir "$P/shadowed"
      shadowed=()
    else
      say "using the machine's own ${shadowed[*]} (moved ours to $P/shadowed)"
    fi
  fi
fi

# 7. Link-time names for h5pcc's "-lcrypto -lcurl -lsz -lz" (normally from libssl-dev, libcurl-dev,
#    libaec-dev, zlib1g-dev): libX.so -> our libX.so.N, or the machine's when ours was shadowed.
for pair in crypto:libcrypto.so.3 curl:libcurl.so.4 sz:libsz.so.2 ssl:libssl.so.3 z:libz.so.1; do
  dev=$L/lib${pair%%:*}.so so=${pair#*:}
  [ -e "$dev" ] && continue
  if [ -e "$L/$so" ]; then
    ln -s "$so" "$dev"
  else
    sys=$(syslib "$so")
    if [ -n "$sys" ]; then ln -s "$sys" "$dev"; fi
  fi
done

# 8. env.sh and cmake_args.txt.
cat > "$P/env.sh" <<EOF
# Source this (. $P/env.sh) before configuring, building or running Reel with the deps in $P.
export REEL_DEPS_PREFIX=$P
export PATH=$U/bin\${PATH:+:\$PATH}
export LD_LIBRARY_PATH=$LIBPATH\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
export PKG_CONFIG_PATH=$L/pkgconfig:$U/lib/pkgconfig:$U/share/pkgconfig\${PKG_CONFIG_PATH:+:\$PKG_CONFIG_PATH}
export CMAKE_PREFIX_PATH=$U\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}
# Open MPI and PMIx were built for /usr; these relocate them (help files, plugins, wrapper data, conf).
export OPAL_PREFIX=$U
export OPAL_SYSCONFDIR=$P/etc/openmpi
export PMIX_SYSCONFDIR=$L/pmix2/share
export PMIX_DATADIR=$L/pmix2/share
export PMIX_MCA_mca_base_component_path=$L/pmix2/lib/pmix
# Single node, as root, maybe in a container: no ssh needed, and no ptrace-based (CMA) copies.
export OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_plm_rsh_agent=false
export OMPI_MCA_btl_vader_single_copy_mechanism=none
EOF
cat > "$P/cmake_args.txt" <<EOF
-DCMAKE_PREFIX_PATH=$U
-DPKG_CONFIG_EXECUTABLE=$U/bin/pkg-config
-DMPI_C_COMPILER=$U/bin/mpicc
-DMPIEXEC_EXECUTABLE=$U/bin/mpirun
-DREEL_MPIEXEC=$U/bin/mpirun
-DHDF5_C_COMPILER_EXECUTABLE=$U/bin/h5pcc
-Dyaml-cpp_DIR=$L/cmake/yaml-cpp
-Dnlohmann_json_DIR=$U/share/cmake/nlohmann_json
-DGTest_DIR=$L/cmake/GTest
EOF

# 9. Check: every shipped program and library finds all its libraries.
missing=0
while IFS= read -r -d '' f; do
  elf "$f" || continue
  out=$(ldd "$f" 2>&1 | grep -E "$LDD_BAD" || true)
  if [ -n "$out" ]; then
    missing=$((missing + 1))
    echo "unpack_deps: ${f#"$P"/}:" >&2
    echo "$out" | sed 's/^/    /' >&2
  fi
done < <(find "$U/bin" "$L" -path "$L/cmake" -prune -o -type f \( -perm -u+x -o -name '*.so*' \) -print0)
if [ ! -e "$L/libavcodec.so.59" ]; then
  say "WARNING: no FFmpeg runtime libraries (.gpu/debs-ffmpeg was not unpacked): Reel will configure but not link"
fi
if [ $missing -gt 0 ]; then
  say "WARNING: $missing files have unresolved libraries (above)"
else
  say "all shipped programs and libraries resolve their dependencies"
fi
say "wrote $P/env.sh and $P/cmake_args.txt; use: . $P/env.sh && cmake ... \$(cat $P/cmake_args.txt)"

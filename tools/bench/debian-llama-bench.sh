#!/bin/bash
# A native llama-bench for `pnpm bench:peer` (ALKI_PEER_LLAMA_BENCH) where llama.cpp's sources cannot be fetched but
# Debian's binary packages can: Debian sid's llama.cpp-tools and libggml0 (with its per-CPU backends), run with sid's
# own loader and libraries on an older Debian, its ggml backends bind-mounted (in a private mount namespace: needs
# root or user namespaces) where the build looks for them. Downloads once into $ALKI_LLAMA_DEBIAN (default
# ~/.cache/alki/debian-llama), checking each package's SHA-256 against sid's Packages index; nothing else is written.
#   ALKI_PEER_LLAMA_BENCH=tools/bench/debian-llama-bench.sh ALKI_PEER_VARIANTS=q4_0,q4_0-native,alki pnpm bench:peer
set -euo pipefail
dir="${ALKI_LLAMA_DEBIAN:-$HOME/.cache/alki/debian-llama}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
lib="$dir/root/usr/lib/x86_64-linux-gnu"
if [ ! -x "$dir/root/usr/bin/llama-bench" ]; then
  mkdir -p "$dir/debs" "$dir/root"
  curl -sf --max-time 300 "$mirror/dists/sid/main/binary-amd64/Packages.xz" | xz -dc > "$dir/Packages"
  for p in libc6 libstdc++6 libgcc-s1 libgomp1 libssl3t64 libcurl4t64 zlib1g libzstd1 libggml0 libllama0 llama.cpp-tools; do
    read -r file sha < <(awk -v p="$p" '$1=="Package:"{cur=$2} cur==p && $1=="Filename:"{f=$2} cur==p && $1=="SHA256:"{print f, $2; exit}' "$dir/Packages")
    [ -n "${file:-}" ] || { echo "sid has no package $p" >&2; exit 1; }
    deb="$dir/debs/$(basename "$file")"
    [ -f "$deb" ] || curl -sf --max-time 300 -o "$deb" "$mirror/$file"
    echo "$sha  $deb" | sha256sum -c --quiet - || { rm -f "$deb"; echo "checksum mismatch for $p" >&2; exit 1; }
    dpkg-deb -x "$deb" "$dir/root"
  done
fi
exec unshare -m sh -c 'd="$1"; shift; mount --bind "$0" /usr/lib/x86_64-linux-gnu && exec "$0/ld-linux-x86-64.so.2" --library-path "$0:$0/llama" "$d/root/usr/bin/llama-bench" "$@"' "$lib" "$dir" "$@"

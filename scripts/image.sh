#!/usr/bin/env bash
# Builds Cairn's container image (Containerfile) offline.
#
#   scripts/image.sh context DIR   make the build context in DIR: the static
#                                  server, the host's CA certificates, data/
#   scripts/image.sh build [TAG]   make the context in build/image and build
#                                  the image with buildah (tag cairn:dev by
#                                  default) when buildah is installed; say so
#                                  and succeed when it is not
#
# The server links DuckDB (the lake's embedded engine, C++) through cgo, so
# it is built with cgo and linked statically (glibc's and libstdc++'s
# static archives, which gcc and g++ bring), with Go's own DNS resolver and
# user lookup (netgo, osusergo): it runs on the empty base, and the build
# needs gcc and g++ on the builder host, nothing from a registry.
# deploy/image_test.go runs the context step and checks its output.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

context() {
	local dir=$1
	mkdir -p "$dir/data"
	chmod 0700 "$dir/data"
	CGO_ENABLED=1 "$GO" build -trimpath -tags netgo,osusergo \
		-ldflags='-s -w -linkmode external -extldflags "-static"' -o "$dir/server" ./cmd/server
	cp "$CA_BUNDLE" "$dir/ca-certificates.crt"
}

case "${1:-}" in
context)
	[[ $# -eq 2 ]] || { echo "usage: $0 context DIR" >&2; exit 2; }
	context "$2"
	;;
build)
	tag=${2:-cairn:dev}
	if ! command -v buildah >/dev/null; then
		echo "image: buildah is not installed; the build steps are checked by deploy/image_test.go instead"
		exit 0
	fi
	rm -rf build/image
	context build/image
	# chroot isolation: no user namespaces, daemon or registry needed.
	buildah bud --isolation chroot --pull=never --format docker -f Containerfile -t "$tag" build/image
	;;
*)
	echo "usage: $0 context DIR | build [TAG]" >&2
	exit 2
	;;
esac

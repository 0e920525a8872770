#!/bin/sh
# make-bundle.sh BUNDLE_DIR MANIFEST LIBRARY STAMP
# Lays a bundle out as tetherd finds one (docs/bundles.md): BUNDLE_DIR holds
# the manifest and the library. The stamp is what the build tracks.
set -eu
dir=$1 manifest=$2 lib=$3 stamp=$4
mkdir -p "$dir"
cp "$manifest" "$dir/manifest.json"
cp "$lib" "$dir/"
touch "$stamp"

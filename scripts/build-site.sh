#!/usr/bin/env bash
# Builds the browser half of Mudmap into target/site/, which the server embeds:
#   pkg/mudmap-<hash>.js, pkg/mudmap-<hash>_bg.wasm   the hydrating front end (content-hashed)
#   pkg/mudmap-<hash>.css                              style/main.css (content-hashed)
#   everything in public/                              favicon, robots.txt
# The directory is replaced atomically, so a running debug server never sees half a site.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=wasm-release
target_dir=${CARGO_TARGET_DIR:-target}
site=target/site
staging=target/site.staging

cargo build -p frontend --lib --target wasm32-unknown-unknown --profile "$profile"

# Nothing changed since the last site build: leave target/site (and its mtimes) alone, so a release
# server that embeds it is not rebuilt either.
raw_wasm="$target_dir/wasm32-unknown-unknown/$profile/frontend.wasm"
stamp=$( (cat "$raw_wasm" style/main.css; find public -type f -print0 | sort -z | xargs -0 cat; \
  wasm-bindgen --version; [ -x end2end/node_modules/.bin/wasm-opt ] && echo wasm-opt) | sha256sum | cut -c1-64)
if [ -d "$site" ] && [ -f "$site.stamp" ] && [ "$(cat "$site.stamp")" = "$stamp" ]; then
  echo "site: $site is up to date"
  exit 0
fi

rm -rf "$staging"
mkdir -p "$staging/pkg"
wasm-bindgen --target web --no-typescript --out-dir "$staging/pkg" --out-name mudmap "$raw_wasm"

wasm_opt=end2end/node_modules/.bin/wasm-opt
if [ -x "$wasm_opt" ]; then
  "$wasm_opt" -Oz "$staging/pkg/mudmap_bg.wasm" -o "$staging/pkg/mudmap_bg.opt.wasm"
  mv "$staging/pkg/mudmap_bg.opt.wasm" "$staging/pkg/mudmap_bg.wasm"
else
  echo "note: $wasm_opt not found (run scripts/tools.sh); the wasm is left unoptimised" >&2
fi

hash=$(cat "$staging/pkg/mudmap.js" "$staging/pkg/mudmap_bg.wasm" | sha256sum | cut -c1-16)
mv "$staging/pkg/mudmap.js" "$staging/pkg/mudmap-$hash.js"
mv "$staging/pkg/mudmap_bg.wasm" "$staging/pkg/mudmap-${hash}_bg.wasm"
css_hash=$(sha256sum style/main.css | cut -c1-16)
cp style/main.css "$staging/pkg/mudmap-$css_hash.css"
cp -R public/. "$staging/"

rm -rf "$site.old"
[ -d "$site" ] && mv "$site" "$site.old"
mv "$staging" "$site"
rm -rf "$site.old"
echo "$stamp" > "$site.stamp"

wasm_bytes=$(stat -c %s "$site/pkg/mudmap-${hash}_bg.wasm")
wasm_gzip=$(gzip -9 -c "$site/pkg/mudmap-${hash}_bg.wasm" | wc -c)
echo "site: $site (wasm ${wasm_bytes} bytes, ${wasm_gzip} gzipped)"

#!/bin/sh
# make release: static archives of p2ptun for each OS/ARCH given, in DIST,
# with SHA256SUMS. Each archive holds the binary, the man page, the bash,
# zsh and fish completions and the README, in a directory named after it:
# tar.gz, or zip for windows. Timestamps and owners are fixed (the last
# commit's time) so that two runs on one commit give the same archives.
# Usage: release.sh DIST BIN VERSION OS/ARCH...   (BIN holds `make man`'s output)
set -eu
dist=$1 bin=$2 version=$3
shift 3
GO=${GO:-go}
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
rm -rf "$dist" && mkdir -p "$dist"
for target in "$@"; do
	os=${target%/*} arch=${target#*/}
	name=p2ptun-$version-$os-$arch
	dir=$dist/$name
	exe=p2ptun
	[ "$os" = windows ] && exe=p2ptun.exe
	mkdir -p "$dir/completion"
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch $GO build -trimpath \
		-ldflags "-s -w -X github.com/p2ptun/p2ptun/cli.Version=$version" -o "$dir/$exe" .
	cp README.md "$bin/p2ptun.1" "$dir/"
	cp "$bin/completion/p2ptun.bash" "$bin/completion/_p2ptun" "$bin/completion/p2ptun.fish" "$dir/completion/"
	find "$dir" -exec touch -d "@$epoch" {} +
	if [ "$os" = windows ]; then
		(cd "$dist" && find "$name" | LC_ALL=C sort | zip -q -X "$name.zip" -@)
	else
		tar -C "$dist" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -cf - "$name" | gzip -n9 > "$dist/$name.tar.gz"
	fi
	rm -rf "$dir"
	echo "$dist/$name"
done
cd "$dist"
if command -v sha256sum >/dev/null 2>&1; then
	sha256sum -- *.tar.gz *.zip > SHA256SUMS
else
	shasum -a 256 -- *.tar.gz *.zip > SHA256SUMS
fi

package daemon

import "errors"

// errPlatform is why a daemon cannot run here: on Windows, file modes do
// not guard the identity key or the API socket (every file reads as 0666,
// every directory as 0777), so the checks that keep them owner-only would
// either refuse them with advice no one can follow or pass them unguarded.
// The daemon fails closed instead; the other commands that need no daemon
// (version, completion, man, config check) work.
var errPlatform = errors.New("the p2ptun daemon is not supported on windows: its identity key and API socket are guarded by Unix file modes; run it on Linux, macOS or FreeBSD (WSL 2 is Linux)")

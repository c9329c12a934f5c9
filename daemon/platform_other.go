//go:build !windows

package daemon

// errPlatform is nil: the daemon runs on every Unix system (see
// platform_windows.go).
var errPlatform error

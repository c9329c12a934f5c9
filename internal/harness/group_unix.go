//go:build unix

package harness

import (
	"os"
	"os/user"
	"strconv"
	"syscall"
	"testing"
)

// ModeAndGroup returns the mode bits (permissions, setuid, setgid,
// sticky) and the group of the file at path.
func ModeAndGroup(t testing.TB, path string) (os.FileMode, int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky), int(fi.Sys().(*syscall.Stat_t).Gid)
}

// OtherGroup returns a group, known to the system by its gid, that this
// process may give its files to (one of its groups, or any as root) and
// that is not gid; the test skips when there is none.
func OtherGroup(t testing.TB, gid int) int {
	t.Helper()
	gids, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	gids = append(gids, os.Getegid())
	if os.Geteuid() == 0 {
		gids = append(gids, 65534) // nogroup; root may give a file to any group
	}
	for _, g := range gids {
		if _, err := user.LookupGroupId(strconv.Itoa(g)); err == nil && g != gid {
			return g
		}
	}
	t.Skip("needs a second group that this user may give files to: run as root, or as a member of a supplementary group")
	return -1
}

package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
)

// notifier tells systemd where the daemon is in its life (sd_notify(3)),
// through the datagram socket named by NOTIFY_SOCKET: a path, or an
// abstract name starting with '@'. Without NOTIFY_SOCKET every method does
// nothing, so the daemon runs the same outside systemd. A failed send is
// logged and otherwise ignored: systemd's own timeouts handle a daemon that
// never reports.
type notifier struct{ log *slog.Logger }

// ready reports that the daemon serves its API (Type=notify waits for
// this), with status as the line `systemctl status` shows.
func (n notifier) ready(status string) {
	n.send(sddaemon.SdNotifyReady, "STATUS="+status, fmt.Sprintf("MAINPID=%d", os.Getpid()))
}

// stopping reports that the daemon has begun to shut down.
func (n notifier) stopping() {
	n.send(sddaemon.SdNotifyStopping, "STATUS=shutting down")
}

// reload brackets a configuration reload as systemd's Type=notify-reload
// expects: RELOADING=1 with the monotonic time before reload runs, then
// READY=1 once it returns, whether it failed or not (a daemon whose reload
// fails keeps running as it was). status gives the line to show
// afterwards; reload's error, if any, is prefixed to it. It returns
// reload's error.
func (n notifier) reload(reload func() error, status func() string) error {
	n.send(sddaemon.SdNotifyReloading, strings.TrimSuffix(sddaemon.SdNotifyMonotonicUsec(), "\n"), "STATUS=reloading")
	err := reload()
	st := status()
	if err != nil {
		st = fmt.Sprintf("reload failed (%v); %s", err, st)
	}
	n.send(sddaemon.SdNotifyReady, "STATUS="+st)
	return err
}

func (n notifier) send(fields ...string) {
	// MONOTONIC_USEC is empty where there is no monotonic clock.
	fields = slices.DeleteFunc(fields, func(f string) bool { return f == "" })
	if _, err := sddaemon.SdNotify(false, strings.Join(fields, "\n")); err != nil {
		n.log.Warn("telling systemd the daemon's state (NOTIFY_SOCKET)", "state", fields[0], "err", err)
	}
}

// statusLine is the daemon's systemd STATUS: its peer, how many addresses
// and config tunnels it serves, and its API socket.
func statusLine(peer string, addrs, tunnels int, sock string) string {
	return fmt.Sprintf("serving peer %s on %s with %s; API %s", peer, count(addrs, "address", "addresses"), count(tunnels, "config tunnel", "config tunnels"), sock)
}

// count is n and the noun in the number n takes: "1 address", "2 addresses".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

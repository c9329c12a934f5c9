// Package notifysock owns Socket, a stand-in for systemd's notification
// socket (NOTIFY_SOCKET, sd_notify(3)) that records what a daemon reports.
// Tests are its only users; the daemon's sending side is in cli.
package notifysock

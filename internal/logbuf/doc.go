// Package logbuf owns Buffer, a byte buffer that many goroutines may write
// to (a daemon's log, a child process's output) while a test reads it.
// Tests are its only users.
package logbuf

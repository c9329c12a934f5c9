// Package measure holds the benchmark's instruments: the target that
// every row's client reaches (a process of its own, whose first byte from
// a client picks upload, download or echo), the client loads that drive a
// row through its address (bulk transfers on one or many connections, new
// connections flat out or paced, connections held open), and the readings
// of a process tree's CPU and memory from /proc.
//
// It knows nothing of rows, daemons or results: the bench command starts a
// row, hands its address to these loads and records what they return.
package measure

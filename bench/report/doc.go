// Package report owns the benchmark's results: their model (rows, each
// with its metrics over the rounds and those of the daemons that carry its
// bytes; the machine and the settings of the run), the ratios of every row
// to the baselines (socat and raw loopback) computed round by round, and
// their three renderings: results.json, the plain-text table (results.txt,
// also printed) and the bar chart (results.svg).
//
// It measures nothing and starts nothing: the bench command records
// samples into a Results, and -render reads one back from results.json.
package report

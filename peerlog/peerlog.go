package peerlog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxKeys bounds the memory a flood of distinct peers can make the logger
// hold; past it, keys whose interval has passed are dropped.
const maxKeys = 4096

// Logger logs an event for a key (a peer and a kind of event) at most once
// per interval.
type Logger struct {
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	at         time.Time
	suppressed int
}

// New returns a Logger writing to log. now may be nil (time.Now).
func New(log *slog.Logger, interval time.Duration, now func() time.Time) *Logger {
	if now == nil {
		now = time.Now
	}
	return &Logger{log: log, interval: interval, now: now, keys: make(map[string]*entry)}
}

// Warn logs msg with args at Warn level unless key was logged less than an
// interval ago; a line that follows suppressed ones carries "suppressed=N".
// It reports whether it logged.
func (l *Logger) Warn(key, msg string, args ...any) bool {
	return l.logAt(slog.LevelWarn, key, msg, args)
}

// Info is Warn at Info level: for lines that are routine but can come in
// floods (a SOCKS egress logs each destination a peer asks for).
func (l *Logger) Info(key, msg string, args ...any) bool {
	return l.logAt(slog.LevelInfo, key, msg, args)
}

func (l *Logger) logAt(level slog.Level, key, msg string, args []any) bool {
	now := l.now()
	l.mu.Lock()
	e, ok := l.keys[key]
	if ok && now.Sub(e.at) < l.interval {
		e.suppressed++
		l.mu.Unlock()
		return false
	}
	suppressed := 0
	if ok {
		suppressed = e.suppressed
	} else {
		if len(l.keys) >= maxKeys {
			l.prune(now)
		}
		e = &entry{}
		l.keys[key] = e
	}
	e.at, e.suppressed = now, 0
	l.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	l.log.Log(context.Background(), level, msg, args...)
	return true
}

// prune drops keys whose interval has passed; called with mu held.
func (l *Logger) prune(now time.Time) {
	for k, e := range l.keys {
		if now.Sub(e.at) >= l.interval {
			delete(l.keys, k)
		}
	}
}

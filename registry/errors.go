package registry

import "errors"

var (
	// ErrNotFound is returned when no entry matches an ID or filter.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned when an entry with the same key is registered.
	ErrExists = errors.New("already exists")
)

package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Events calls fn with each event the daemon emits until ctx ends, fn
// returns an error, or the daemon stops (then it returns nil). subscribed,
// if not nil, is called once the daemon has subscribed the client.
//
// c.Timeout bounds the subscription, not the events that follow.
func (c *Client) Events(ctx context.Context, subscribed func(), fn func(Event) error) error {
	rctx, answered, done := c.begin(ctx)
	defer done()
	resp, err := c.send(rctx, http.MethodGet, "/v0/events", nil)
	answered()
	if err != nil {
		return c.timedOut(rctx, err)
	}
	defer resp.Body.Close()
	if subscribed != nil {
		subscribed()
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var ev Event
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return c.timedOut(rctx, fmt.Errorf("reading events: %w", err))
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}

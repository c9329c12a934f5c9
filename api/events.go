package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// eventRoutes serves GET /v0/events: the node's lifecycle events as JSON
// lines, one per event, for as long as the client reads (or until the
// daemon stops). A client too slow to keep up gets an events_lost event and
// the end of the response.
func (s *Server) eventRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v0/events", func(w http.ResponseWriter, r *http.Request) {
		events, cancel := s.node.Subscribe()
		defer cancel()
		s.log.Info("events subscriber attached")
		defer s.log.Info("events subscriber detached")
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		// Tell the client it is subscribed before any event happens, so
		// that a script can start the subscription and then act.
		if err := rc.Flush(); err != nil {
			return
		}
		enc := json.NewEncoder(w)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return
				}
				if enc.Encode(eventFrom(ev)) != nil || rc.Flush() != nil {
					return
				}
			case <-r.Context().Done():
				return
			case <-s.life.Done():
				return
			}
		}
	})
}

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

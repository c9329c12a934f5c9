package server

import (
	"net/http"

	"github.com/p2ptun/p2ptun/api"
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
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return
				}
				if api.WriteJSON(w, api.EventFrom(ev).Named(s.aliases()), "") != nil || rc.Flush() != nil {
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

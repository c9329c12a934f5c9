package api

import "net/http"

// accessRoutes serves the node-wide access policy (p2ptun access).
func (s *Server) accessRoutes(mux *http.ServeMux) {}

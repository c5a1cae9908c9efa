// Package web holds the HTTP side of Shoptrail: one route table per
// listener, middleware, and the one place where errors become status codes.
package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/shoptrail/shoptrail/engine/catalog"
	"github.com/shoptrail/shoptrail/engine/redact"
	"github.com/shoptrail/shoptrail/engine/store"
	"github.com/shoptrail/shoptrail/engine/track"
)

// Error is an error with the HTTP status and the JSON body it maps to:
// {"error":{"code":"invalid_field","field":"limit","message":"..."}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

func errorf(status int, code, field, msg string) *Error {
	return &Error{Status: status, Code: code, Field: field, Message: msg}
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error *Error `json:"error"`
}

// handle adapts a handlerFunc: it maps the error to a status and a JSON
// body, and logs server errors once.
func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		var e *Error
		var tooBig *http.MaxBytesError
		var rebuilding *catalog.RebuildingError
		switch {
		case errors.As(err, &e):
		case errors.As(err, &tooBig):
			e = errorf(http.StatusRequestEntityTooLarge, "too_large", "body", "the request body is larger than "+strconv.FormatInt(tooBig.Limit, 10)+" bytes")
		case errors.Is(err, track.ErrOverloaded), errors.Is(err, track.ErrClosed):
			w.Header().Set("Retry-After", "1")
			e = errorf(http.StatusServiceUnavailable, "overloaded", "", err.Error()+"; retry after 1 second")
		case errors.As(err, &rebuilding):
			w.Header().Set("Retry-After", "5")
			e = errorf(http.StatusServiceUnavailable, "index_rebuilding", "", strings.TrimPrefix(rebuilding.Error(), "catalog: "))
		case errors.Is(err, store.ErrDiskFull):
			w.Header().Set("Retry-After", diskRetryAfter)
			e = errorf(http.StatusServiceUnavailable, "disk_full", "", publicDiskMessage)
		case errors.Is(err, store.ErrNotFound):
			e = errorf(http.StatusNotFound, "not_found", "", "not found")
		default:
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", redact.Error(err))
			e = errorf(http.StatusInternalServerError, "internal", "", "internal error; the server log has details")
		}
		writeJSON(w, e.Status, errorBody{Error: e})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // an error here means the client left
}

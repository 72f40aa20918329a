package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-cdp/cairn/internal/idempotency"
)

const idempotencyHeader = "Idempotency-Key"

// Idempotency timing.
const (
	// IdempotencyTTL is how long a key is remembered.
	IdempotencyTTL = 24 * time.Hour
	// idempotencyLease bounds how long an in-flight request holds its key;
	// after it, a retry may take the key over (its holder presumably died).
	idempotencyLease = time.Minute
)

// replayedHeaders are the response headers kept for a replay.
var replayedHeaders = []string{"Content-Type", "Location", "Etag"}

// bufferedResponse captures a response so it can be stored for replay.
type bufferedResponse struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
	b.ResponseWriter.WriteHeader(code)
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	b.body.Write(p)
	return b.ResponseWriter.Write(p)
}

// idempotent replays responses of POST requests that carry an
// Idempotency-Key, per principal: same key and request, the first response;
// same key, different request, 422; same key while the first request is in
// flight, 409. Responses with a 5xx status are not remembered, so the client
// can retry them.
func idempotent(store idempotency.Store, now func() time.Time, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get(idempotencyHeader)
		info, _ := r.Context().Value(ctxRoute).(*routeInfo)
		principal, ok := principalFrom(r.Context())
		if key == "" || info == nil || !info.idempotent || !ok {
			next.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body) // the gate has already buffered it
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.New()
		io.WriteString(sum, r.Method+" "+r.URL.Path+"\n")
		var compact bytes.Buffer
		if json.Compact(&compact, body) == nil {
			body = compact.Bytes()
		}
		sum.Write(body)
		t := now()
		rec := idempotency.Record{
			Principal:   principal.Subject,
			Key:         key,
			RequestHash: hex.EncodeToString(sum.Sum(nil)),
			LockedUntil: t.Add(idempotencyLease),
			CreatedAt:   t,
			ExpiresAt:   t.Add(IdempotencyTTL),
		}
		got, claimed, err := store.IdempotencyClaim(r.Context(), rec, t)
		if err != nil {
			writeProblem(w, r, toProblem(r, log, err))
			return
		}
		if !claimed {
			switch {
			case got.RequestHash != rec.RequestHash:
				writeProblem(w, r, newProblem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency key reused",
					"This Idempotency-Key was used with a different request; use a new key."))
			case !got.Completed:
				writeProblem(w, r, newProblem(http.StatusConflict, "idempotency-key-in-flight", "Request in flight",
					"A request with this Idempotency-Key is still being processed; retry later."))
			default:
				replay(w, got)
			}
			return
		}

		buf := &bufferedResponse{ResponseWriter: w}
		completed := false
		defer func() {
			// A panic or a server error leaves nothing to replay: free the key.
			if !completed {
				if err := store.IdempotencyRelease(r.Context(), rec.Principal, rec.Key); err != nil {
					log.ErrorContext(r.Context(), "release idempotency key", "request_id", requestID(r.Context()), "err", err)
				}
			}
		}()
		next.ServeHTTP(buf, r)
		if buf.status >= 500 || buf.status == 0 {
			return
		}
		header := http.Header{}
		for _, h := range replayedHeaders {
			if v := w.Header().Get(h); v != "" {
				header.Set(h, v)
			}
		}
		stored := buf.body.Bytes()
		if len(info.secrets) > 0 {
			var redacted []string
			if stored, redacted, err = redact(stored, info.secrets); err != nil {
				// Nothing that may hold a secret is remembered; the key is
				// freed and a retry runs the request again.
				log.ErrorContext(r.Context(), "redact idempotent response", "request_id", requestID(r.Context()), "err", err)
				return
			}
			if len(redacted) > 0 {
				header.Set(secretRedactedHeader, strings.Join(redacted, ", "))
			}
		}
		hdr, _ := json.Marshal(header)
		if err := store.IdempotencyComplete(r.Context(), rec.Principal, rec.Key, buf.status, hdr, stored); err != nil {
			log.ErrorContext(r.Context(), "store idempotent response", "request_id", requestID(r.Context()), "err", err)
			return
		}
		completed = true
	})
}

// secretRedactedHeader names, on a replay, the response fields that were
// left out (null) because they are secrets shown once.
const secretRedactedHeader = "Cairn-Secret-Redacted"

// redact returns a JSON object body with the named top-level fields set to
// null, and the fields it nulled. A body that is not a JSON object is an
// error: it cannot be shown to hold no secret.
func redact(body []byte, fields []string) ([]byte, []string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, nil, fmt.Errorf("response is not a JSON object: %w", err)
	}
	var redacted []string
	for _, f := range fields {
		if v, ok := obj[f]; ok && string(v) != "null" {
			obj[f] = json.RawMessage("null")
			redacted = append(redacted, f)
		}
	}
	if len(redacted) == 0 {
		return body, nil, nil
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, nil, err
	}
	return append(out, '\n'), redacted, nil
}

func replay(w http.ResponseWriter, rec idempotency.Record) {
	var header http.Header
	_ = json.Unmarshal(rec.Header, &header)
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Idempotent-Replayed", "true")
	w.WriteHeader(rec.Status)
	_, _ = w.Write(rec.Body)
}

package httpapi

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// This file is the transport of the ingestion routes (the operations marked
// x-cairn-ingest in the spec): what Segment's and RudderStack's server and
// browser libraries send, compressed or not, under whatever media type they
// use, and the one pass that splits a batch into its events.

// extIngest marks an ingestion operation; extCORS one that browsers may
// call across origins.
const (
	extIngest = "x-cairn-ingest"
	extCORS   = "x-cairn-cors"
	// extSecrets names the top-level fields of an operation's response that
	// are secrets shown once: they are never remembered for a replay.
	extSecrets = "x-cairn-secrets"
)

// tooLarge is the problem for a body over limit; tooBig is its status.
func tooLarge(limit int64, tooBig int) *problem {
	kind := "too-large"
	if tooBig == http.StatusBadRequest {
		kind = "invalid-request"
	}
	return newProblem(tooBig, kind, "Request body too large",
		fmt.Sprintf("The request body must be at most %d bytes; nothing of it was stored.", limit))
}

func unsupportedMediaType(detail string) *problem {
	return newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type", detail)
}

// ingestMediaType reports whether an ingestion route reads a body sent
// with this Content-Type as JSON: JSON itself, and what libraries send it
// as (analytics.js sends text/plain to avoid a CORS preflight;
// rudder-sdk-node sends application/x-www-form-urlencoded), or none.
func ingestMediaType(contentType string) bool {
	if strings.TrimSpace(contentType) == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	switch {
	case mt == "application/json", strings.HasSuffix(mt, "+json"), mt == "text/plain", mt == "application/x-www-form-urlencoded":
		return true
	}
	return false
}

// readIngestBody reads an ingestion route's body, decompressing it by its
// Content-Encoding (gzip, deflate, or identity), and returns it. limit
// applies to the decompressed body, which is read through a limited reader:
// a small body that inflates past limit (a decompression bomb) is refused
// after reading limit+1 bytes of it, never inflated whole. Answers: 415 for
// another encoding or media type, tooBig past limit, 400 for a corrupt
// stream or an empty body.
func readIngestBody(r *http.Request, limit int64, tooBig int) ([]byte, *problem) {
	if !ingestMediaType(r.Header.Get("Content-Type")) {
		return nil, unsupportedMediaType("The request body must be JSON (application/json, text/plain or application/x-www-form-urlencoded).")
	}
	// The compressed body is limited too; deflate's worst case adds 5
	// bytes per 16 KiB block, and gzip a header and trailer.
	wire := http.MaxBytesReader(nil, r.Body, limit+limit/1024+1024)
	var (
		src io.Reader = wire
		err error
	)
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
		enc = ""
	case "gzip", "x-gzip":
		if src, err = gzip.NewReader(wire); err != nil {
			return nil, corruptBody(err, limit, tooBig, enc)
		}
	case "deflate":
		if src, err = inflater(wire); err != nil {
			return nil, corruptBody(err, limit, tooBig, enc)
		}
	default:
		return nil, unsupportedMediaType(fmt.Sprintf("Content-Encoding %q is not supported; send gzip, deflate or no encoding.", enc))
	}
	body, err := io.ReadAll(io.LimitReader(src, limit+1))
	if err != nil {
		return nil, corruptBody(err, limit, tooBig, enc)
	}
	if int64(len(body)) > limit {
		return nil, tooLarge(limit, tooBig)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("body", "a JSON request body is required")
	}
	// The generated handler reads the body as JSON whatever it was sent as.
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Del("Content-Encoding")
	return body, nil
}

// corruptBody maps an error reading a (compressed) body: over the wire
// limit, or a stream that is not what its encoding says.
func corruptBody(err error, limit int64, tooBig int, encoding string) *problem {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(limit, tooBig)
	}
	if encoding == "" {
		return badRequest("body", "could not be read")
	}
	return badRequest("body", "is not a valid "+encoding+" stream")
}

// inflater reads HTTP "deflate": a zlib stream (RFC 9110), or the raw
// deflate stream some clients send under that name.
func inflater(r io.Reader) (io.Reader, error) {
	br := &peekReader{r: r}
	head, err := br.peek(2)
	if err != nil {
		return nil, err
	}
	if head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}

// peekReader lets inflater look at a stream's first bytes.
type peekReader struct {
	r    io.Reader
	head []byte
}

func (p *peekReader) peek(n int) ([]byte, error) {
	p.head = make([]byte, n)
	if _, err := io.ReadFull(p.r, p.head); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, errors.New("stream too short")
		}
		return nil, err
	}
	return p.head, nil
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// ReadByte makes the peekReader an io.ByteReader, so flate reads exactly
// the compressed stream (and nothing needs a bufio on top).
func (p *peekReader) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := io.ReadFull(p, b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// jsonOptions read JSON as encoding/json does: duplicate names and invalid
// UTF-8 are not errors (ParseEvent judges each event).
var jsonOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// errTwoKeys is returned by bodyWriteKey for two different top-level
// writeKey members.
var errTwoKeys = errors.New("two different writeKey members")

// bodyWriteKey returns the string value of the body's top-level "writeKey"
// member, as analytics.js sends the write key, or "" when the body is not
// an object or has none. It scans tokens and skips other values without
// decoding them. ParseEvent's stricter reading later refuses what this
// lets through.
func bodyWriteKey(body []byte) (string, error) {
	dec := jsontext.NewDecoder(bytes.NewReader(body), jsonOptions...)
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return "", nil
	}
	key := ""
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return "", nil
		}
		if name.String() != "writeKey" {
			if dec.SkipValue() != nil {
				return "", nil
			}
			continue
		}
		v, err := dec.ReadToken()
		if err != nil {
			return "", nil
		}
		if v.Kind() == '{' || v.Kind() == '[' {
			return "", nil
		}
		if v.Kind() != '"' {
			continue
		}
		if key != "" && key != v.String() {
			return "", errTwoKeys
		}
		key = v.String()
	}
	return key, nil
}

// splitEvents returns the raw bytes of the body's events in one pass: the
// elements of a batch's "batch" array, or the body itself for one event.
// Each event keeps the exact bytes it was sent with, so the raw zone stores
// it as sent; only an event spread over several lines is compacted, since
// the raw zone keeps one event per line. A body that is not a JSON object,
// a batch without an array "batch", or trailing data after the body is a
// 400 problem; maxItems bounds the batch.
func splitEvents(body []byte, batch bool, maxItems int) ([]json.RawMessage, *problem) {
	dec := jsontext.NewDecoder(bytes.NewReader(body), jsonOptions...)
	if !batch {
		if dec.PeekKind() != '{' {
			return nil, badRequest("body", "must be a JSON object")
		}
		v, err := dec.ReadValue()
		if err != nil {
			return nil, badRequest("body", "is not valid JSON")
		}
		raw := oneLine(body, dec.InputOffset(), len(v))
		if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
			return nil, badRequest("body", "must hold one JSON value")
		}
		return []json.RawMessage{raw}, nil
	}
	notArray := badRequest("batch", "must be an array of events")
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, badRequest("body", "must be a JSON object")
	}
	var events []json.RawMessage
	seen := false
	for dec.PeekKind() == '"' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil, badRequest("body", "is not valid JSON")
		}
		if name.String() != "batch" || seen {
			// A repeated "batch" is skipped: the first one counts.
			if dec.SkipValue() != nil {
				return nil, badRequest("body", "is not valid JSON")
			}
			continue
		}
		seen = true
		if dec.PeekKind() != '[' {
			return nil, notArray
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, notArray
		}
		events = make([]json.RawMessage, 0, 64)
		for dec.PeekKind() != ']' {
			v, err := dec.ReadValue()
			if err != nil {
				return nil, badRequest("batch", "is not valid JSON")
			}
			if len(events) == maxItems {
				return nil, badRequest("batch", fmt.Sprintf("at most %d events", maxItems))
			}
			events = append(events, oneLine(body, dec.InputOffset(), len(v)))
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, badRequest("batch", "is not valid JSON")
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, badRequest("body", "is not valid JSON")
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return nil, badRequest("body", "must hold one JSON value")
	}
	if !seen {
		return nil, badRequest("batch", "is required")
	}
	return events, nil
}

// oneLine returns the n bytes of body that end at end, compacted when they
// span lines (JSON strings cannot hold a raw newline, so that is only
// whitespace between tokens).
func oneLine(body []byte, end int64, n int) json.RawMessage {
	raw := body[end-int64(n) : end : end]
	if bytes.IndexByte(raw, '\n') < 0 {
		return raw
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return raw // ParseEvent refuses it
	}
	return buf.Bytes()
}

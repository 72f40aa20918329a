package awsfault

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// protocol is the wire protocol of a call, which decides how its operation
// is named and how an injected error is shaped.
type protocol int

const (
	protoUnknown  protocol = iota
	protoQuery             // awsQuery: form body with Action, XML answers
	protoJSON              // awsJson 1.0/1.1: X-Amz-Target, JSON answers
	protoRESTJSON          // REST-JSON, one path segment per operation
	protoREST              // REST-XML (S3)
)

// identify names the call's operation. For an awsQuery call it reads the
// form body and puts an identical one back, so that the request forwarded
// is byte for byte what the client signed.
func identify(r *http.Request) (call, error) {
	c := call{service: signingService(r)}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		c.protocol = protoJSON
		c.name = target[strings.LastIndexByte(target, '.')+1:]
		return c, nil
	}
	if c.service != "s3" {
		if action := r.URL.Query().Get("Action"); action != "" {
			c.protocol, c.name = protoQuery, action
			return c, nil
		}
		mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if r.Method == http.MethodPost && mediaType == "application/x-www-form-urlencoded" && r.Body != nil {
			body, err := io.ReadAll(r.Body)
			_ = r.Body.Close()
			if err != nil {
				return c, fmt.Errorf("read request body: %w", err)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			form, err := url.ParseQuery(string(body))
			if err == nil && form.Get("Action") != "" {
				c.protocol, c.name = protoQuery, form.Get("Action")
			}
			return c, nil
		}
	}
	if c.service == "s3" {
		c.protocol, c.name = protoREST, s3Operation(r)
		return c, nil
	}
	if name := strings.TrimPrefix(r.URL.Path, "/"); r.Method == http.MethodPost && isOperationName(name) {
		c.protocol, c.name = protoRESTJSON, name
	}
	return c, nil
}

// isOperationName reports whether s looks like an operation name:
// "GrantPermissions", not "2015-03-31/functions" or "".
func isOperationName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// signingService returns the service of the request's SigV4 credential
// scope (Credential=AKID/date/region/SERVICE/aws4_request), from the
// Authorization header or a presigned URL, or "".
func signingService(r *http.Request) string {
	scope := r.URL.Query().Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); auth != "" {
		if _, rest, ok := strings.Cut(auth, "Credential="); ok {
			scope, _, _ = strings.Cut(rest, ",")
		}
	}
	parts := strings.Split(strings.TrimSpace(scope), "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[3]
}

// s3Operation names the common S3 operations of a path-style request
// (/bucket/key), or returns "" for the others, which are only forwarded:
// ListBuckets, CreateBucket, HeadBucket, DeleteBucket, ListObjects,
// ListObjectsV2, ListObjectVersions, DeleteObjects, GetBucketLocation,
// GetBucketVersioning, PutBucketVersioning, PutObject, CopyObject,
// GetObject, HeadObject, DeleteObject.
func s3Operation(r *http.Request) string {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	has := func(k string) bool { _, ok := q[k]; return ok }
	switch {
	case bucket == "":
		if r.Method == http.MethodGet {
			return "ListBuckets"
		}
	case key == "":
		switch r.Method {
		case http.MethodGet:
			switch {
			case has("versions"):
				return "ListObjectVersions"
			case has("location"):
				return "GetBucketLocation"
			case has("versioning"):
				return "GetBucketVersioning"
			case q.Get("list-type") == "2":
				return "ListObjectsV2"
			case !hasSubresource(q):
				return "ListObjects"
			}
		case http.MethodPost:
			if has("delete") {
				return "DeleteObjects"
			}
		case http.MethodPut:
			switch {
			case has("versioning"):
				return "PutBucketVersioning"
			case !hasSubresource(q):
				return "CreateBucket"
			}
		case http.MethodHead:
			return "HeadBucket"
		case http.MethodDelete:
			if !hasSubresource(q) {
				return "DeleteBucket"
			}
		}
	default:
		if hasSubresource(q) {
			return ""
		}
		switch r.Method {
		case http.MethodGet:
			return "GetObject"
		case http.MethodHead:
			return "HeadObject"
		case http.MethodDelete:
			return "DeleteObject"
		case http.MethodPut:
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				return "CopyObject"
			}
			return "PutObject"
		}
	}
	return ""
}

// hasSubresource reports whether the query names an S3 sub-resource
// (?tagging, ?acl, ?uploads, ...) rather than only listing parameters,
// version IDs or SDK markers.
func hasSubresource(q url.Values) bool {
	for k := range q {
		switch k {
		case "prefix", "delimiter", "marker", "max-keys", "encoding-type", "continuation-token",
			"fetch-owner", "start-after", "list-type", "versionId", "x-id":
		default:
			if !strings.HasPrefix(strings.ToLower(k), "x-amz-") {
				return true
			}
		}
	}
	return false
}

// writeError answers the call with the rule's error in the call's protocol.
func writeError(w http.ResponseWriter, c call, r *Rule) {
	status, code, message := r.status, r.code, r.message
	requestID := rand.Text()
	switch c.protocol {
	case protoJSON, protoRESTJSON:
		if r.throttle {
			status, code, message = http.StatusBadRequest, "ThrottlingException", "Rate exceeded"
		}
		body, _ := json.Marshal(struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}{code, message})
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", code)
		w.Header().Set("X-Amzn-RequestId", requestID)
		writeBody(w, status, body)
	case protoREST:
		if r.throttle {
			status, code, message = http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate."
		}
		var b bytes.Buffer
		b.WriteString(xml.Header)
		b.WriteString("<Error><Code>")
		_ = xml.EscapeText(&b, []byte(code))
		b.WriteString("</Code><Message>")
		_ = xml.EscapeText(&b, []byte(message))
		b.WriteString("</Message><RequestId>" + requestID + "</RequestId></Error>")
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("X-Amz-Request-Id", requestID)
		writeBody(w, status, b.Bytes())
	default:
		if r.throttle {
			status, code, message = http.StatusBadRequest, "Throttling", "Rate exceeded"
		}
		kind := "Sender"
		if status >= 500 {
			kind = "Receiver"
		}
		var b bytes.Buffer
		b.WriteString("<ErrorResponse><Error><Type>" + kind + "</Type><Code>")
		_ = xml.EscapeText(&b, []byte(code))
		b.WriteString("</Code><Message>")
		_ = xml.EscapeText(&b, []byte(message))
		b.WriteString("</Message></Error><RequestId>" + requestID + "</RequestId></ErrorResponse>")
		w.Header().Set("Content-Type", "text/xml")
		w.Header().Set("X-Amzn-RequestId", requestID)
		writeBody(w, status, b.Bytes())
	}
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

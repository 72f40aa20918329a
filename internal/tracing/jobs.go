package tracing

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// metadataKey is where a job's metadata holds the trace context of the
// request (or job) that enqueued it.
const metadataKey = "otel"

// JobInsert carries the trace of whatever inserts a job into the job's
// metadata (under "otel", W3C trace context fields), so the span of its
// work continues that trace. It needs no tracer: without a span in the
// inserting context it adds nothing.
type JobInsert struct{ river.MiddlewareDefaults }

var _ rivertype.JobInsertMiddleware = &JobInsert{}

// InsertMany implements rivertype.JobInsertMiddleware.
func (*JobInsert) InsertMany(ctx context.Context, many []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	carrier := propagation.MapCarrier{}
	Propagator.Inject(ctx, carrier)
	if len(carrier) == 0 {
		return doInner(ctx)
	}
	for _, p := range many {
		meta := map[string]any{}
		if len(p.Metadata) > 0 {
			if err := json.Unmarshal(p.Metadata, &meta); err != nil {
				continue // not an object: left as it is
			}
		}
		meta[metadataKey] = map[string]string(carrier)
		if b, err := json.Marshal(meta); err == nil {
			p.Metadata = b
		}
	}
	return doInner(ctx)
}

// JobWork makes a span of each job's work, named after its kind, a child
// of the span that inserted it (when its metadata carries one), with the
// job's ID, kind, attempt and tenant (an args field tenant_id) as
// attributes; an error the job returns marks the span.
type JobWork struct{ river.MiddlewareDefaults }

var _ rivertype.WorkerMiddleware = &JobWork{}

// Work implements rivertype.WorkerMiddleware.
func (*JobWork) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	var meta struct {
		Otel map[string]string `json:"otel"`
	}
	if len(job.Metadata) > 0 && json.Unmarshal(job.Metadata, &meta) == nil && len(meta.Otel) > 0 {
		ctx = Propagator.Extract(ctx, propagation.MapCarrier(meta.Otel))
	}
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "river"),
		attribute.String("messaging.operation.name", "process"),
		attribute.String("messaging.message.id", strconv.FormatInt(job.ID, 10)),
		attribute.String("cairn.job.kind", job.Kind),
		attribute.Int("cairn.job.attempt", job.Attempt),
	}
	var args struct {
		TenantID string `json:"tenant_id"`
	}
	if json.Unmarshal(job.EncodedArgs, &args) == nil && args.TenantID != "" {
		attrs = append(attrs, attribute.String("cairn.tenant_id", args.TenantID))
	}
	ctx, span := Tracer().Start(ctx, "job "+job.Kind, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	defer span.End()
	err := doInner(ctx)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

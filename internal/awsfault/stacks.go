package awsfault

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
)

// HoldInProgress makes DescribeStacks report stackName as
// CREATE_IN_PROGRESS, without a status reason or outputs (as CloudFormation
// does while it creates a stack), in the next polls answers that include
// that stack; answers after those show its real status. Answers that do not
// include the stack (another page, or before it exists) do not count. The
// rule removes itself once used up.
//
// The rewrite reads the awsQuery XML answer, the protocol CloudFormation
// speaks; an answer it cannot parse passes unchanged.
func (p *Proxy) HoldInProgress(stackName string, polls int) *Rule {
	var (
		mu        sync.Mutex
		remaining = max(polls, 0)
		rule      *Rule
	)
	// Hold mu until rule is set: a call may come in as soon as the rule is
	// added.
	mu.Lock()
	defer mu.Unlock()
	rule = p.Rewrite("cloudformation:DescribeStacks", func(body []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if remaining == 0 {
			return body
		}
		out, found := setStackStatus(body, stackName, "CREATE_IN_PROGRESS", "", true)
		if found {
			remaining--
			if remaining == 0 {
				// Remove takes the proxy's lock, which rewrites never hold.
				rule.Remove()
			}
		}
		return out
	})
	if remaining == 0 {
		rule.Remove()
	}
	return rule
}

// FailStack makes every DescribeStacks answer that includes stackName show
// it with status (e.g. ROLLBACK_COMPLETE) and reason as its status reason,
// until the rule is removed. For the statuses of a failed creation
// (CREATE_FAILED, ROLLBACK_*) it drops the outputs too, as CloudFormation
// reports none for a stack that never completed; for the others (e.g.
// UPDATE_ROLLBACK_COMPLETE, DELETE_FAILED) the outputs stay.
func (p *Proxy) FailStack(stackName, status, reason string) *Rule {
	dropOutputs := status == "CREATE_FAILED" || strings.HasPrefix(status, "ROLLBACK_")
	return p.Rewrite("cloudformation:DescribeStacks", func(body []byte) []byte {
		out, _ := setStackStatus(body, stackName, status, reason, dropOutputs)
		return out
	})
}

// setStackStatus rewrites, in a DescribeStacks XML answer, the status and
// status reason of every stack member named name that is not
// DELETE_COMPLETE, and drops its outputs if dropOutputs is set. It reports
// whether it found such a member; a body it cannot parse comes back as is.
//
// It splices bytes at offsets found by an XML tokenizer rather than
// re-encoding the document, so everything else, namespaces included, stays
// exactly as the emulator wrote it.
func setStackStatus(body []byte, name, status, reason string, dropOutputs bool) ([]byte, bool) {
	members, err := stackMembers(body)
	if err != nil {
		return body, false
	}
	type edit struct {
		start, end int
		text       []byte
	}
	var edits []edit
	for _, m := range members {
		if m.name != name || m.status == "DELETE_COMPLETE" {
			continue
		}
		statusSpan, ok := m.children["StackStatus"]
		if !ok {
			continue
		}
		reasonText := []byte(nil)
		if reason != "" {
			reasonText = element("StackStatusReason", reason)
		}
		// Edits never overlap: a missing reason goes in with the status.
		statusText := element("StackStatus", status)
		if s, ok := m.children["StackStatusReason"]; ok {
			edits = append(edits, edit{s.start, s.end, reasonText})
		} else {
			statusText = append(statusText, reasonText...)
		}
		edits = append(edits, edit{statusSpan.start, statusSpan.end, statusText})
		if s, ok := m.children["Outputs"]; ok && dropOutputs {
			edits = append(edits, edit{s.start, s.end, nil})
		}
	}
	if len(edits) == 0 {
		return body, false
	}
	// Apply from the end so that earlier offsets stay valid.
	slices.SortFunc(edits, func(a, b edit) int { return b.start - a.start })
	out := slices.Clone(body)
	for _, e := range edits {
		out = slices.Concat(out[:e.start], e.text, out[e.end:])
	}
	return out, true
}

func element(tag, text string) []byte {
	var b bytes.Buffer
	b.WriteString("<" + tag + ">")
	_ = xml.EscapeText(&b, []byte(text))
	b.WriteString("</" + tag + ">")
	return b.Bytes()
}

type span struct{ start, end int }

// stackMember is one DescribeStacksResult/Stacks/member element.
type stackMember struct {
	name, status string
	// children are the byte spans of the member's direct children, whole
	// elements from '<' to '>', keyed by local name.
	children map[string]span
}

// stackMembers finds the stack members of a DescribeStacks answer
// (<DescribeStacksResponse><DescribeStacksResult><Stacks><member>...).
func stackMembers(body []byte) ([]stackMember, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var (
		path       []string
		members    []stackMember
		cur        *stackMember
		childStart int
		text       []byte
	)
	isMember := func() bool {
		n := len(path)
		return n == 4 && path[1] == "DescribeStacksResult" && path[2] == "Stacks" && path[3] == "member"
	}
	for {
		start := int(d.InputOffset())
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return members, nil
		}
		if err != nil {
			return nil, err
		}
		end := int(d.InputOffset())
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			switch {
			case isMember():
				cur = &stackMember{children: make(map[string]span)}
			case cur != nil && len(path) == 5:
				childStart = start
				text = text[:0]
			}
		case xml.CharData:
			if cur != nil && len(path) == 5 {
				text = append(text, t...)
			}
		case xml.EndElement:
			switch {
			case cur != nil && len(path) == 5:
				cur.children[t.Name.Local] = span{childStart, end}
				switch t.Name.Local {
				case "StackName":
					cur.name = string(bytes.TrimSpace(text))
				case "StackStatus":
					cur.status = string(bytes.TrimSpace(text))
				}
			case isMember():
				members = append(members, *cur)
				cur = nil
			}
			path = path[:len(path)-1]
		}
	}
}

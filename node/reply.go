package node

import "github.com/tidwall/redcon"

// replier is where a command writes its reply: the connection itself, or a
// buffer when the reply belongs to an EXEC or to a batch of pipelined
// commands that is answered only once it has committed.
type replier interface {
	WriteError(msg string)
	WriteString(str string)
	WriteBulk(bulk []byte)
	WriteBulkString(bulk string)
	WriteInt(num int)
	WriteInt64(num int64)
	WriteUint64(num uint64)
	WriteArray(count int)
	WriteNull()
	WriteRaw(data []byte)
	// errorReplies counts the errors written, lastError is the latest: the
	// command statistics tell a failed command by them.
	errorReplies() uint64
	lastError() string
	// spill sends what the connection has buffered once it is large, so a
	// reply that is long without the data being large (HRANDFIELD with a
	// huge negative count) takes memory bounded by the socket, not by the
	// count. A buffer answered later keeps it all, as Redis's reply list.
	spill()
}

// replyBuf collects replies in RESP form.
type replyBuf struct {
	b []byte
	n int // top-level replies written
	// pending holds the elements still due in each open array, innermost
	// last, so that n counts top-level replies only.
	pending []int
	errs    uint64
	lastErr string
}

// done records that one element is complete: it fills a slot of the
// innermost open array, which when full is itself an element of its parent.
func (r *replyBuf) done() {
	for len(r.pending) > 0 {
		top := len(r.pending) - 1
		r.pending[top]--
		if r.pending[top] > 0 {
			return
		}
		r.pending = r.pending[:top]
	}
	r.n++
}

func (r *replyBuf) WriteError(msg string) {
	r.b = redcon.AppendError(r.b, msg)
	r.errs, r.lastErr = r.errs+1, msg
	r.done()
}
func (r *replyBuf) WriteString(str string)      { r.b = redcon.AppendString(r.b, str); r.done() }
func (r *replyBuf) WriteBulk(bulk []byte)       { r.b = redcon.AppendBulk(r.b, bulk); r.done() }
func (r *replyBuf) WriteBulkString(bulk string) { r.b = redcon.AppendBulkString(r.b, bulk); r.done() }
func (r *replyBuf) WriteInt(num int)            { r.b = redcon.AppendInt(r.b, int64(num)); r.done() }
func (r *replyBuf) WriteInt64(num int64)        { r.b = redcon.AppendInt(r.b, num); r.done() }
func (r *replyBuf) WriteUint64(num uint64)      { r.b = redcon.AppendUint(r.b, num); r.done() }
func (r *replyBuf) WriteNull()                  { r.b = redcon.AppendNull(r.b); r.done() }

// WriteRaw appends one complete reply already in RESP form.
func (r *replyBuf) WriteRaw(data []byte) { r.b = append(r.b, data...); r.done() }

func (r *replyBuf) WriteArray(count int) {
	r.b = redcon.AppendArray(r.b, count)
	if count <= 0 {
		r.done()
		return
	}
	r.pending = append(r.pending, count)
}

func (r *replyBuf) errorReplies() uint64 { return r.errs }
func (r *replyBuf) lastError() string    { return r.lastErr }

func (r *replyBuf) spill() {}

func (r *replyBuf) reset() { r.b, r.n, r.pending = r.b[:0], 0, r.pending[:0] }

// connWriter is a connection's reply writer: redcon's, counting errors.
type connWriter struct {
	*redcon.Writer
	errs    uint64
	lastErr string
}

func (w *connWriter) WriteError(msg string) {
	w.Writer.WriteError(msg)
	w.errs, w.lastErr = w.errs+1, msg
}

// spillAt is how much a connection buffers before spill sends it.
const spillAt = 1 << 20

func (w *connWriter) spill() {
	if len(w.Buffer()) >= spillAt {
		w.Flush()
	}
}

func (w *connWriter) errorReplies() uint64 { return w.errs }
func (w *connWriter) lastError() string    { return w.lastErr }

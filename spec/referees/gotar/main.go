// gotar lists tar archives with Go's archive/tar, the reader containerd, Docker, podman and umoci
// unpack image layers with: the referee of cloudrootfs's tar reader (spec/differential/gotar.spec.ts).
//
// Standard library only, so it builds offline. It reads archive paths from stdin, one per line,
// and writes one JSON line per archive: every header Reader.Next returned, with the SHA-256 of
// what Reader.Read gives for it, then the error that ended the listing (null at io.EOF). One
// process lists many archives, so the tests start it a few times, not once per case.
//
// Strings are hex-encoded bytes (names need not be UTF-8) and numbers are decimal strings (int64
// does not fit a JSON number read by JavaScript).
package main

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"time"
)

type entry struct {
	Name      string            `json:"name"`
	Type      int               `json:"type"`
	Size      string            `json:"size"`
	Mode      string            `json:"mode"`
	Uid       string            `json:"uid"`
	Gid       string            `json:"gid"`
	Mtime     []string          `json:"mtime"`
	Atime     []string          `json:"atime"`
	Ctime     []string          `json:"ctime"`
	Linkname  string            `json:"linkname"`
	Uname     string            `json:"uname"`
	Gname     string            `json:"gname"`
	Devmajor  string            `json:"devmajor"`
	Devminor  string            `json:"devminor"`
	Pax       map[string]string `json:"pax"`
	Xattrs    map[string]string `json:"xattrs"`
	Sha256    string            `json:"sha256"`
	ReadBytes string            `json:"readBytes"`
}

type listing struct {
	Entries []entry `json:"entries"`
	Error   *string `json:"error"`
}

func hexOf(s string) string { return hex.EncodeToString([]byte(s)) }

func hexMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[hexOf(k)] = hexOf(v)
	}
	return out
}

// timeOf gives [seconds, nanoseconds] as time.Unix would take them, or nil for the zero time.
func timeOf(t time.Time) []string {
	if t.IsZero() {
		return nil
	}
	return []string{strconv.FormatInt(t.Unix(), 10), strconv.Itoa(t.Nanosecond())}
}

func list(path string) listing {
	out := listing{Entries: []entry{}}
	fail := func(err error) listing {
		msg := err.Error()
		out.Error = &msg
		return out
	}
	f, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	// Not an io.Seeker: the reader sees a stream, as the unpackers of layers do.
	tr := tar.NewReader(struct{ io.Reader }{bufio.NewReader(f)})
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			return fail(err)
		}
		sum := sha256.New()
		n, readErr := io.Copy(sum, tr)
		out.Entries = append(out.Entries, entry{
			Name:      hexOf(h.Name),
			Type:      int(h.Typeflag),
			Size:      strconv.FormatInt(h.Size, 10),
			Mode:      strconv.FormatInt(h.Mode, 10),
			Uid:       strconv.Itoa(h.Uid),
			Gid:       strconv.Itoa(h.Gid),
			Mtime:     timeOf(h.ModTime),
			Atime:     timeOf(h.AccessTime),
			Ctime:     timeOf(h.ChangeTime),
			Linkname:  hexOf(h.Linkname),
			Uname:     hexOf(h.Uname),
			Gname:     hexOf(h.Gname),
			Devmajor:  strconv.FormatInt(h.Devmajor, 10),
			Devminor:  strconv.FormatInt(h.Devminor, 10),
			Pax:       hexMap(h.PAXRecords),
			Xattrs:    hexMap(h.Xattrs),
			Sha256:    hex.EncodeToString(sum.Sum(nil)),
			ReadBytes: strconv.FormatInt(n, 10),
		})
		if readErr != nil {
			return fail(readErr)
		}
	}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<16), 1<<20)
	w := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(w)
	for in.Scan() {
		if err := enc.Encode(list(in.Text())); err != nil {
			panic(err)
		}
	}
	if err := in.Err(); err != nil {
		panic(err)
	}
	if err := w.Flush(); err != nil {
		panic(err)
	}
}

package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/bookscatalog/catalog/es"
	"github.com/bookscatalog/catalog/eskafka"
)

// View serves a read model keyed by something that is no aggregate (a
// customer's balance, say) at GET Path, whose one wildcard is the key: the
// key is checked, read, and the read forwarded to the instance that owns
// the key when that is another one, as a Resource's reads are. Add it with
// Config.Handle.
type View struct {
	// Path is the route, with the key as its one wildcard, e.g.
	// "/customers/{customer}/balance".
	Path string
	// Singular names what one key holds, in messages ("balance").
	Singular string
	// ValidKey reports why a key is malformed (a 400, before any read),
	// nil when it is well-formed. Nil accepts any key.
	ValidKey func(key string) error
	// Read reads the view: Get's eskafka.ErrNotFound is a 404,
	// eskafka.ErrNotOwner is forwarded along Ownership (or a 503 when
	// there is none, or no owner is known), eskafka.ErrRestoring a 503.
	Read
}

// keyName returns the name of Path's one wildcard.
func (v *View) keyName() (string, error) {
	open, end := strings.IndexByte(v.Path, '{'), strings.IndexByte(v.Path, '}')
	if open < 0 || end < open || strings.Count(v.Path, "{") != 1 {
		return "", fmt.Errorf("httpapi: view path %q must hold exactly one {key} wildcard", v.Path)
	}
	return v.Path[open+1 : end], nil
}

func (v *View) mount(mux *http.ServeMux, cfg *Config) {
	key, err := v.keyName()
	if err != nil {
		panic(err)
	}
	if v.Get == nil || v.Singular == "" {
		panic(fmt.Sprintf("httpapi: view %s needs Singular and Get", v.Path))
	}
	peers := cfg.Peers
	mux.HandleFunc("GET "+v.Path, func(w http.ResponseWriter, r *http.Request) {
		k := r.PathValue(key)
		if v.ValidKey != nil {
			if err := v.ValidKey(k); err != nil {
				rej := es.AsRejection(err)
				p := problem(http.StatusBadRequest, "malformed %s in path: %s", key, rej.Message)
				p.Field = key
				writeProblem(w, p)
				return
			}
		}
		got, err := v.Get(r.Context(), k)
		if errors.Is(err, eskafka.ErrNotOwner) && peers.forward(w, r, v.Ownership, k) {
			return
		}
		if err != nil {
			writeProblem(w, readProblem(w, err, v.Singular+" of "+key, k))
			return
		}
		writeJSON(w, http.StatusOK, got)
	})
}

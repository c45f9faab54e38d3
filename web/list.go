package web

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// listQuery is what a list request asks for: ?limit=&offset=&sort=&order=&q=
type listQuery struct {
	limit, offset int
	sort          string
	desc          bool
	filter        string // lower case
}

// sortKeys maps the sort names a list accepts to comparisons; the first
// name given to parseList is the default.
type sortKeys[T any] map[string]func(a, b T) int

func parseList[T any](r *http.Request, keys sortKeys[T], def string) (listQuery, error) {
	q := r.URL.Query()
	lq := listQuery{limit: defaultPageSize, sort: def, filter: strings.ToLower(q.Get("q"))}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			return lq, errBadRequest("limit must be a number from 1 to %d", maxPageSize)
		}
		lq.limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return lq, errBadRequest("offset must be a number from 0 up")
		}
		lq.offset = n
	}
	if v := q.Get("sort"); v != "" {
		if keys[v] == nil {
			names := make([]string, 0, len(keys))
			for k := range keys {
				names = append(names, k)
			}
			slices.Sort(names)
			return lq, errBadRequest("cannot sort by %q; use one of %s", v, strings.Join(names, ", "))
		}
		lq.sort = v
	}
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		lq.desc = true
	default:
		return lq, errBadRequest("order must be asc or desc")
	}
	return lq, nil
}

// page is one page of a list, with the size of the whole (filtered) list.
type page[T any] struct {
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
	Items  []T `json:"items"`
}

// paginate sorts items in place by the query's key (ties keep their order)
// and cuts out the page asked for.
func paginate[T any](items []T, lq listQuery, keys sortKeys[T]) page[T] {
	by := keys[lq.sort]
	slices.SortStableFunc(items, func(a, b T) int {
		if lq.desc {
			return by(b, a)
		}
		return by(a, b)
	})
	p := page[T]{Total: len(items), Offset: lq.offset, Limit: lq.limit}
	start := min(lq.offset, len(items))
	end := min(start+lq.limit, len(items))
	p.Items = items[start:end:end]
	if p.Items == nil {
		p.Items = []T{}
	}
	return p
}

// by builds a comparison on one field.
func by[T any, K cmp.Ordered](field func(T) K) func(a, b T) int {
	return func(a, b T) int { return cmp.Compare(field(a), field(b)) }
}

// matches reports whether any of fields contains the lower-case filter.
func matches(filter string, fields ...string) bool {
	if filter == "" {
		return true
	}
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), filter) {
			return true
		}
	}
	return false
}

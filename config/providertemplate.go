package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"text/template"
)

// providerTemplateFuncs are the functions of an http channel's body and
// header templates, beside text/template's own (printf, and so on).
var providerTemplateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"urlquery": func(args ...any) string { return url.QueryEscape(fmt.Sprint(args...)) },
}

// ParseProviderTemplate parses an http channel's body or header template,
// the one way both Validate and the sender do. A variable the message does
// not have is an error at send time, not an empty string sent to a
// provider.
func ParseProviderTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Funcs(providerTemplateFuncs).Option("missingkey=error").Parse(text)
}

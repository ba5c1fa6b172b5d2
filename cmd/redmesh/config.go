package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// applyConfigFile reads a YAML file whose keys are the command's flag names
// (without the dashes) and sets every flag not given on the command line, so
// that the file carries exactly the same settings as the flags and the
// command line wins. A list sets a repeatable flag once per element.
func applyConfigFile(flags *pflag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var settings map[string]any
	if err := yaml.Unmarshal(b, &settings); err != nil {
		return fmt.Errorf("parse config %s: %w", path, err)
	}
	for name, v := range settings {
		f := flags.Lookup(name)
		if f == nil || f.Hidden || name == "config" {
			return fmt.Errorf("config %s: unknown setting %q", path, name)
		}
		if f.Changed {
			continue
		}
		values := []any{v}
		if list, ok := v.([]any); ok {
			values = list
		}
		for _, item := range values {
			if err := flags.Set(name, fmt.Sprint(item)); err != nil {
				return fmt.Errorf("config %s: %s: %w", path, name, err)
			}
		}
	}
	return nil
}

// rewriteConfigFile sets settings (by flag name) in the YAML file at path,
// as CONFIG REWRITE does in redis.conf: a setting already there changes in
// place, a new one is appended, every other line and comment stays. The
// file is replaced atomically (a new file, synced, renamed over it).
func rewriteConfigFile(path string, settings map[string]string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("parse config %s: %w", path, err)
	}
	if doc.Kind == 0 { // an empty file
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("config %s is not a mapping of settings", path)
	}
	names := make([]string, 0, len(settings))
	for name := range settings {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		value := &yaml.Node{Kind: yaml.ScalarNode, Value: settings[name]}
		if name == "requirepass" {
			value.Tag = "!!str" // quoted if it would read as something else
		}
		found := false
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == name {
				value.HeadComment, value.LineComment = root.Content[i+1].HeadComment, root.Content[i+1].LineComment
				root.Content[i+1], found = value, true
			}
		}
		if !found {
			root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, value)
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	return writeFileAtomic(path, out)
}

// writeFileAtomic replaces path with data: never half written, even on a
// crash.
func writeFileAtomic(path string, data []byte) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; else the leftover
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(info.Mode().Perm())
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

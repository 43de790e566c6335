-- SQL functions installed (CREATE OR REPLACE) after every migration. They hold no data.

-- Percent-encode the characters of an IVOA identifier that are not safe in a URL query value.
CREATE OR REPLACE FUNCTION escape.url_quote(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT replace(replace(replace(replace(replace(replace(
    replace(value, '%', '%25'), ':', '%3A'), '/', '%2F'), '?', '%3F'), '#', '%23'),
    '&', '%26'), ' ', '%20')
$$;

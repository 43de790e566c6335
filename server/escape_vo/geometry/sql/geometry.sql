-- Portable sky geometry for ADQL: no pgsphere, q3c or PostGIS needed.
--
-- Installed with CREATE OR REPLACE after every migration, in one transaction; idempotent.
-- Geometry values are double precision[] in ICRS degrees:
--   point   = {ra, dec}
--   circle  = {ra, dec, radius}
--   polygon = {ra1, dec1, ra2, dec2, ...}   (>= 3 vertices)
--
-- Polygon rule. Edges are the minor great-circle arcs between consecutive vertices (the last vertex
-- connects back to the first). Either winding order is accepted: the polygon is the SMALLER of the
-- two regions the edges bound (area <= 2 pi sr). ADQL (2.0 sect. 2.4.13, 2.1 POLYGON) only says
-- that POLYGON "corresponds semantically to the STC Polygon"; STC 1.33 sect. 4.5.1.4 defines the
-- inside as the area to the left of the edges, i.e. vertices listed counter-clockwise as seen on
-- the sky. For any counter-clockwise polygon smaller than a hemisphere both rules agree; clients
-- that send clockwise lists (many do) still get the region they meant. The price: a region larger
-- than a hemisphere cannot be written as a polygon. Polygons must be simple (edges do not cross
-- each other; not checked). Consecutive duplicate vertices (also a closing vertex equal to the
-- first) are dropped; antipodal consecutive vertices and edges folding back on themselves raise.
--
-- BOX rule (ADQL 2.0 sect. 2.4.3 and ADQL 2.1 BOX, both "the STC Box"; STC 1.33 Box): a cross
-- centred on the position, its arms parallel to the coordinate axes at the centre and extending
-- half the width (along the great circle tangent to the parallel) and half the height (along the
-- meridian) on either side; the sides are great circles meeting the arm ends at right angles. The
-- corners are therefore the gnomonic (tangent-plane) points (+-tan(w/2), +-tan(h/2)) around the
-- centre, and BOX is a 4-vertex polygon. This is NOT an RA/Dec range box (which STC calls a
-- coordinate interval): near the poles the two differ a lot. 0 < width, height < 180.
--
-- Predicates return integer 1/0 (ADQL CONTAINS/INTERSECTS are numeric). NULL in -> NULL out.
-- Functions used on the hot path are LANGUAGE sql so that the planner inlines them and folds
-- constant arguments: CONTAINS(POINT(ra, dec), CIRCLE(...)) becomes a haversine comparison with
-- precomputed constants; a constant polygon or circle is "prepared" (unit vectors, edge normals,
-- orientation, bounding cap) once at plan time by escape._geom_prep, and only the per-row test runs
-- in plpgsql. Errors use SQLSTATE 22023 (invalid_parameter_value).

-- Raise an error from inside an inlinable SQL expression. Callers always pass a message built from
-- the very inputs that the guarding CASE condition tests, so a constant message is only folded
-- (and raised) at plan time when the condition itself is constant-true.
CREATE OR REPLACE FUNCTION escape._geom_raise(msg text, dummy anyelement) RETURNS anyelement
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE COST 1 AS $$
BEGIN
  RAISE EXCEPTION USING MESSAGE = msg, ERRCODE = '22023';
END
$$;

-- The error of an invalid CIRCLE(ra, dec, r).
CREATE OR REPLACE FUNCTION escape._circle_error(ra float8, "dec" float8, r float8)
RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE COST 1 AS $$
BEGIN
  IF NOT (abs("dec") <= 90) THEN
    RAISE EXCEPTION 'latitude % is outside [-90, 90]', "dec" USING ERRCODE = '22023';
  END IF;
  RAISE EXCEPTION 'circle radius must be a number >= 0, got %', r USING ERRCODE = '22023';
END
$$;

-- 'point', 'circle' or 'polygon' from the array length (for messages).
CREATE OR REPLACE FUNCTION escape._geom_kind_name(g float8[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE cardinality(g) WHEN 2 THEN 'point' WHEN 3 THEN 'circle'
         ELSE 'polygon (' || cardinality(g) || ' numbers)' END
$$;

-- Angle in radians between two unit vectors; atan2 form, accurate at 0 and at 180 degrees.
CREATE OR REPLACE FUNCTION escape._angle(
  x1 float8, y1 float8, z1 float8, x2 float8, y2 float8, z2 float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT atan2(sqrt(power(y1 * z2 - z1 * y2, 2) + power(z1 * x2 - x1 * z2, 2)
                    + power(x1 * y2 - y1 * x2, 2)),
               x1 * x2 + y1 * y2 + z1 * z2)
$$;

------------------------------------------------------------------------------------------------
-- Constructors
------------------------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION escape.adql_point(ra float8, "dec" float8) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN ra IS NULL OR "dec" IS NULL THEN NULL ELSE ARRAY[ra, "dec"] END
$$;

-- Kept cheap in the planner's eyes (a few operators, errors raised by one COST 1 call) so that it
-- inlines, and CONTAINS(POINT(a.ra, a.dec), CIRCLE(b.ra, b.dec, r)) in a join inlines too.
CREATE OR REPLACE FUNCTION escape.adql_circle(ra float8, "dec" float8, r float8) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN ra IS NULL OR "dec" IS NULL OR r IS NULL THEN NULL
    WHEN r BETWEEN 0 AND 'Infinity' AND abs("dec") <= 90 THEN ARRAY[ra, "dec", r]
    ELSE escape._circle_error(ra, "dec", r)
  END
$$;

------------------------------------------------------------------------------------------------
-- Preparation: validated geometry -> unit vectors and precomputed terms.
--   point   {1, x, y, z, ra, dec}
--   circle  {2, x, y, z, r_rad (<= pi), ra, dec, r_deg}
--   polygon {3, n, convex, cos_cap, cx, cy, cz, area_sr, cap_rad, 0,
--            n vertices (x, y, z),
--            n edges from vertex i to i+1 (14 each: n = vi x vi+1 (not normalised), vi . vi+1,
--            unit normal nhat, arc length, t1 = nhat x vi, t2 = vi+1 x nhat)}
-- The polygon is oriented so that its interior (the smaller region) lies to the left of every
-- edge as seen from outside the sphere, i.e. (vi x vi+1) . p > 0 on the inside of each edge. (cx, cy, cz) is the surface centroid;
-- when all vertices lie within cap_rad < 90 deg of it, the polygon lies inside that cap and
-- cos_cap (slightly lowered for rounding) is a cheap rejection test; otherwise cos_cap = -2.
-- COST 1000 (a polygon takes tens of microseconds) also steers the plan cache: a generic plan of a
-- prepared statement, where a polygon parameter is not folded and would be prepared again for
-- every row, then looks (rightly) dearer than custom plans.
------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION escape._geom_prep(g float8[]) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
DECLARE
  m int := cardinality(g);
  n int := 0;
  i int; j int; k int; pass int;
  ra float8; de float8; cd float8; x float8; y float8; z float8;
  vx float8[] := '{}'; vy float8[] := '{}'; vz float8[] := '{}';
  enx float8[]; eny float8[]; enz float8[]; edot float8[];
  ehx float8[]; ehy float8[]; ehz float8[]; elen float8[];
  nn float8; t float8; tsum float8; convex boolean;
  cx float8; cy float8; cz float8; cap float8; area float8;
  e1x float8; e1y float8; e1z float8; e2x float8; e2y float8; e2z float8;
  px float8[]; py float8[]; a2 float8; sx float8; sy float8; cr float8;
  ux float8; uy float8; uz float8; wx float8; wy float8; wz float8; qx float8; qy float8;
  qz float8;
  res float8[];
BEGIN
  IF array_position(g, NULL) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  IF m = 2 OR m = 3 THEN
    ra := g[1]; de := g[2];
    IF NOT (de BETWEEN -90 AND 90) THEN
      RAISE EXCEPTION 'latitude % is outside [-90, 90]', de USING ERRCODE = '22023';
    END IF;
    IF NOT (abs(ra) < 'Infinity') THEN
      RAISE EXCEPTION 'longitude % is not a finite number', ra USING ERRCODE = '22023';
    END IF;
    cd := cos(radians(de));
    x := cd * cos(radians(ra)); y := cd * sin(radians(ra)); z := sin(radians(de));
    IF m = 2 THEN
      RETURN ARRAY[1, x, y, z, ra, de];
    END IF;
    IF NOT (g[3] BETWEEN 0 AND 'Infinity') THEN
      RAISE EXCEPTION 'circle radius must be a number >= 0, got %', g[3] USING ERRCODE = '22023';
    END IF;
    RETURN ARRAY[2, x, y, z, radians(least(g[3], 180.0)), ra, de, g[3]];
  END IF;
  IF m % 2 = 1 THEN
    RAISE EXCEPTION 'a geometry array holds 2 (point), 3 (circle) or an even number >= 6 '
      '(polygon) of numbers, got %', m USING ERRCODE = '22023';
  END IF;
  IF m < 6 THEN
    RAISE EXCEPTION 'polygon needs at least 3 vertices, got %', m / 2 USING ERRCODE = '22023';
  END IF;

  -- vertices as unit vectors, consecutive duplicates dropped
  FOR i IN 1 .. m / 2 LOOP
    ra := g[2 * i - 1]; de := g[2 * i];
    IF NOT (de BETWEEN -90 AND 90) THEN
      RAISE EXCEPTION 'latitude % of polygon vertex % is outside [-90, 90]', de, i
        USING ERRCODE = '22023';
    END IF;
    IF NOT (abs(ra) < 'Infinity') THEN
      RAISE EXCEPTION 'longitude % of polygon vertex % is not a finite number', ra, i
        USING ERRCODE = '22023';
    END IF;
    cd := cos(radians(de));
    x := cd * cos(radians(ra)); y := cd * sin(radians(ra)); z := sin(radians(de));
    IF n > 0 AND power(x - vx[n], 2) + power(y - vy[n], 2) + power(z - vz[n], 2) < 1e-28 THEN
      CONTINUE;
    END IF;
    n := n + 1; vx[n] := x; vy[n] := y; vz[n] := z;
  END LOOP;
  WHILE n > 1 AND power(vx[1] - vx[n], 2) + power(vy[1] - vy[n], 2)
                  + power(vz[1] - vz[n], 2) < 1e-28 LOOP
    n := n - 1;
  END LOOP;
  IF n < 3 THEN
    RAISE EXCEPTION 'polygon needs at least 3 distinct vertices, got %', n
      USING ERRCODE = '22023';
  END IF;
  vx := vx[1:n]; vy := vy[1:n]; vz := vz[1:n];

  -- edges and turning angles; reverse once if the left side is the larger region
  FOR pass IN 1 .. 2 LOOP
    enx := '{}'; eny := '{}'; enz := '{}'; edot := '{}';
    ehx := '{}'; ehy := '{}'; ehz := '{}'; elen := '{}';
    FOR i IN 1 .. n LOOP
      -- n = vi x (vj - vi): the difference is small for short edges and exact, so the normal
      -- keeps full relative precision even for edges of a few microarcseconds
      j := i % n + 1;
      ux := vx[j] - vx[i]; uy := vy[j] - vy[i]; uz := vz[j] - vz[i];
      x := vy[i] * uz - vz[i] * uy;
      y := vz[i] * ux - vx[i] * uz;
      z := vx[i] * uy - vy[i] * ux;
      nn := sqrt(x * x + y * y + z * z);
      cd := 1 - (ux * ux + uy * uy + uz * uz) / 2;
      IF nn < 1e-14 THEN
        RAISE EXCEPTION 'polygon edge from vertex % to vertex % is undefined: the vertices are '
          'antipodal', i, j USING ERRCODE = '22023';
      END IF;
      enx[i] := x; eny[i] := y; enz[i] := z; edot[i] := cd;
      ehx[i] := x / nn; ehy[i] := y / nn; ehz[i] := z / nn; elen[i] := atan2(nn, cd);
    END LOOP;
    tsum := 0; convex := true;
    FOR i IN 1 .. n LOOP
      k := (i + n - 2) % n + 1;  -- the edge arriving at vertex i
      -- signed turn from edge k to edge i at vertex i (positive = to the left)
      t := atan2((ehy[k] * ehz[i] - ehz[k] * ehy[i]) * vx[i]
                 + (ehz[k] * ehx[i] - ehx[k] * ehz[i]) * vy[i]
                 + (ehx[k] * ehy[i] - ehy[k] * ehx[i]) * vz[i],
                 ehx[k] * ehx[i] + ehy[k] * ehy[i] + ehz[k] * ehz[i]);
      IF abs(t) > pi() - 1e-12 THEN
        RAISE EXCEPTION 'polygon is degenerate: its edges fold back on each other at vertex %', i
          USING ERRCODE = '22023';
      END IF;
      IF t < -1e-12 THEN
        convex := false;
      END IF;
      tsum := tsum + t;
    END LOOP;
    EXIT WHEN tsum >= 0;
    -- interior to the right: reverse the vertex order and recompute
    SELECT array_agg(vx[s] ORDER BY s DESC), array_agg(vy[s] ORDER BY s DESC),
           array_agg(vz[s] ORDER BY s DESC)
      INTO vx, vy, vz FROM generate_series(1, n) AS s;
  END LOOP;

  -- centroid: planar (gnomonic) for tiny polygons, where the vector formula loses digits
  cx := 0; cy := 0; cz := 0;
  FOR i IN 1 .. n LOOP
    cx := cx + vx[i]; cy := cy + vy[i]; cz := cz + vz[i];
  END LOOP;
  nn := sqrt(cx * cx + cy * cy + cz * cz);
  cap := 0;
  IF nn > 1e-9 THEN
    cx := cx / nn; cy := cy / nn; cz := cz / nn;
    FOR i IN 1 .. n LOOP
      cap := greatest(cap, escape._angle(cx, cy, cz, vx[i], vy[i], vz[i]));
    END LOOP;
  ELSE
    cap := pi();
  END IF;
  IF cap < 1e-3 THEN
    -- east/north basis at the vertex mean
    IF abs(cz) < 0.9 THEN
      e1x := -cy; e1y := cx; e1z := 0;
    ELSE
      e1x := 0; e1y := -cz; e1z := cy;
    END IF;
    nn := sqrt(e1x * e1x + e1y * e1y + e1z * e1z);
    e1x := e1x / nn; e1y := e1y / nn; e1z := e1z / nn;
    e2x := cy * e1z - cz * e1y; e2y := cz * e1x - cx * e1z; e2z := cx * e1y - cy * e1x;
    px := '{}'; py := '{}';
    FOR i IN 1 .. n LOOP
      t := vx[i] * cx + vy[i] * cy + vz[i] * cz;
      px[i] := (vx[i] * e1x + vy[i] * e1y + vz[i] * e1z) / t;
      py[i] := (vx[i] * e2x + vy[i] * e2y + vz[i] * e2z) / t;
    END LOOP;
    a2 := 0; sx := 0; sy := 0;
    FOR i IN 1 .. n LOOP
      j := i % n + 1;
      cr := px[i] * py[j] - px[j] * py[i];
      a2 := a2 + cr; sx := sx + (px[i] + px[j]) * cr; sy := sy + (py[i] + py[j]) * cr;
    END LOOP;
    sx := sx / (3 * a2); sy := sy / (3 * a2);
    cx := cx + sx * e1x + sy * e2x; cy := cy + sx * e1y + sy * e2y;
    cz := cz + sx * e1z + sy * e2z;
  ELSE
    -- integral of the position vector over the region = 1/2 sum(arc length * edge unit normal)
    cx := 0; cy := 0; cz := 0;
    FOR i IN 1 .. n LOOP
      cx := cx + elen[i] * ehx[i]; cy := cy + elen[i] * ehy[i]; cz := cz + elen[i] * ehz[i];
    END LOOP;
  END IF;
  nn := sqrt(cx * cx + cy * cy + cz * cz);
  IF nn > 1e-12 THEN
    cx := cx / nn; cy := cy / nn; cz := cz / nn;
    cap := 0;
    FOR i IN 1 .. n LOOP
      cap := greatest(cap, escape._angle(cx, cy, cz, vx[i], vy[i], vz[i]));
    END LOOP;
  ELSE  -- no centroid direction (degenerate): no bounding cap either
    cx := vx[1]; cy := vy[1]; cz := vz[1]; cap := pi();
  END IF;

  -- area: fan of signed triangles from vertex 1 with difference vectors (accurate for tiny
  -- polygons; valid inside a hemisphere), else 2 pi minus the total turning
  IF cap < pi() / 2 - 1e-9 THEN
    area := 0;
    FOR i IN 2 .. n - 1 LOOP
      ux := vx[i] - vx[1]; uy := vy[i] - vy[1]; uz := vz[i] - vz[1];
      wx := vx[i + 1] - vx[1]; wy := vy[i + 1] - vy[1]; wz := vz[i + 1] - vz[1];
      qx := uy * wz - uz * wy; qy := uz * wx - ux * wz; qz := ux * wy - uy * wx;
      area := area + 2 * atan2(vx[1] * qx + vy[1] * qy + vz[1] * qz,
        1 + vx[1] * vx[i] + vy[1] * vy[i] + vz[1] * vz[i]
          + vx[i] * vx[i + 1] + vy[i] * vy[i + 1] + vz[i] * vz[i + 1]
          + vx[i + 1] * vx[1] + vy[i + 1] * vy[1] + vz[i + 1] * vz[1]);
    END LOOP;
    area := abs(area);
  ELSE
    area := 2 * pi() - tsum;
  END IF;

  res := ARRAY[3, n, CASE WHEN convex THEN 1 ELSE 0 END,
               CASE WHEN cap < pi() / 2 - 1e-9 THEN cos(cap) - 1e-15 ELSE -2 END,
               cx, cy, cz, area, cap, 0];
  FOR i IN 1 .. n LOOP
    res := res || ARRAY[vx[i], vy[i], vz[i]];
  END LOOP;
  FOR i IN 1 .. n LOOP
    j := i % n + 1;
    res := res || ARRAY[enx[i], eny[i], enz[i], edot[i], ehx[i], ehy[i], ehz[i], elen[i],
      ehy[i] * vz[i] - ehz[i] * vy[i], ehz[i] * vx[i] - ehx[i] * vz[i],
      ehx[i] * vy[i] - ehy[i] * vx[i],
      vy[j] * ehz[i] - vz[j] * ehy[i], vz[j] * ehx[i] - vx[j] * ehz[i],
      vx[j] * ehy[i] - vy[j] * ehx[i]];
  END LOOP;
  RETURN res;
END
$$;

-- Inlined front of _geom_prep: a point costs no function call.
CREATE OR REPLACE FUNCTION escape._geom_prep_fast(g float8[]) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(g) = 2 AND g[1] IS NOT NULL AND g[2] BETWEEN -90 AND 90
    THEN ARRAY[1, cos(radians(g[2])) * cos(radians(g[1])), cos(radians(g[2])) * sin(radians(g[1])),
               sin(radians(g[2])), g[1], g[2]]
    ELSE escape._geom_prep(g) END
$$;

------------------------------------------------------------------------------------------------
-- Polygon primitives on prepared arrays (p is a unit vector)
------------------------------------------------------------------------------------------------

-- Is p inside (or on) the prepared polygon?
CREATE OR REPLACE FUNCTION escape._poly_has(pg float8[], x float8, y float8, z float8)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n int := pg[2];
  eb int := 10 + 3 * pg[2];
  k int; i int; v int;
  w float8 := 0;
  ax float8; ay float8; az float8; bx float8; by_ float8; bz float8;
BEGIN
  IF x * pg[5] + y * pg[6] + z * pg[7] < pg[4] THEN
    RETURN false;
  END IF;
  IF pg[3] = 1 THEN
    -- convex: inside every edge's left hemisphere (boundary included, with 1e-15 rad to spare
    -- for rounding, so that a polygon contains its own vertices)
    FOR i IN 0 .. n - 1 LOOP
      k := eb + 14 * i;
      IF x * pg[k + 5] + y * pg[k + 6] + z * pg[k + 7] < -1e-15 THEN
        RETURN false;
      END IF;
    END LOOP;
    RETURN true;
  END IF;
  -- general: winding number of the boundary seen from p (+2 pi inside, 0 or -2 pi outside), the
  -- sum of the angles at p between successive vertices, from the (small, exact) differences
  -- d = v - p projected on the tangent plane at p
  ax := pg[11] - x; ay := pg[12] - y; az := pg[13] - z;
  FOR i IN 1 .. n LOOP
    v := 10 + 3 * (i % n);
    bx := pg[v + 1] - x; by_ := pg[v + 2] - y; bz := pg[v + 3] - z;
    w := w + atan2((ay * bz - az * by_) * x + (az * bx - ax * bz) * y + (ax * by_ - ay * bx) * z,
                   ax * bx + ay * by_ + az * bz
                   - (ax * x + ay * y + az * z) * (bx * x + by_ * y + bz * z));
    ax := bx; ay := by_; az := bz;
  END LOOP;
  RETURN w > pi();
END
$$;

-- Smallest angle (radians) from p to the polygon boundary.
CREATE OR REPLACE FUNCTION escape._poly_dist(pg float8[], x float8, y float8, z float8)
RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n int := pg[2];
  eb int := 10 + 3 * pg[2];
  k int; i int; v int;
  best float8 := pi();
  s float8;
BEGIN
  FOR i IN 0 .. n - 1 LOOP
    v := 10 + 3 * i;
    best := least(best, escape._angle(x, y, z, pg[v + 1], pg[v + 2], pg[v + 3]));
    k := eb + 14 * i;
    IF x * pg[k + 9] + y * pg[k + 10] + z * pg[k + 11] >= 0
       AND x * pg[k + 12] + y * pg[k + 13] + z * pg[k + 14] >= 0 THEN
      s := abs(x * pg[k + 5] + y * pg[k + 6] + z * pg[k + 7]);
      best := least(best, atan2(s, sqrt(greatest(0, 1 - s * s))));
    END IF;
  END LOOP;
  RETURN best;
END
$$;

-- Is vertex (offset v) of prepared polygon p, a point on the great circle of edge (offset k) of
-- prepared polygon q, between that edge's end points?
CREATE OR REPLACE FUNCTION escape._on_arc(p float8[], v int, q float8[], k int) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT p[v + 1] * q[k + 9] + p[v + 2] * q[k + 10] + p[v + 3] * q[k + 11] >= 0
     AND p[v + 1] * q[k + 12] + p[v + 2] * q[k + 13] + p[v + 3] * q[k + 14] >= 0
$$;

-- Do an edge of polygon a and an edge of polygon b cross? proper = only crossings through both
-- interiors (touching does not count); otherwise touching and overlapping count too.
CREATE OR REPLACE FUNCTION escape._poly_edges_cross(pa float8[], pb float8[], proper boolean)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  na int := pa[2]; nb int := pb[2];
  ea int := 10 + 3 * pa[2]; eb int := 10 + 3 * pb[2];
  i int; j int; a1 int; a2 int; b1 int; b2 int; ka int; kb int;
  s1 float8; s2 float8; s3 float8; s4 float8; t float8; u float8;
  yax float8; yay float8; yaz float8; ybx float8; yby float8; ybz float8;
BEGIN
  FOR i IN 0 .. na - 1 LOOP
    a1 := 10 + 3 * i; a2 := 10 + 3 * ((i + 1) % na); ka := ea + 14 * i;
    FOR j IN 0 .. nb - 1 LOOP
      b1 := 10 + 3 * j; b2 := 10 + 3 * ((j + 1) % nb); kb := eb + 14 * j;
      -- signed sines of the distances of b's ends from a's great circle and vice versa; within
      -- 1e-15 of zero counts as on the circle (rounding), so that shared edges only touch
      s1 := pa[ka + 5] * pb[b1 + 1] + pa[ka + 6] * pb[b1 + 2] + pa[ka + 7] * pb[b1 + 3];
      s2 := pa[ka + 5] * pb[b2 + 1] + pa[ka + 6] * pb[b2 + 2] + pa[ka + 7] * pb[b2 + 3];
      CONTINUE WHEN (s1 > 1e-15 AND s2 > 1e-15) OR (s1 < -1e-15 AND s2 < -1e-15)
        OR (proper AND (abs(s1) <= 1e-15 OR abs(s2) <= 1e-15));
      s3 := pb[kb + 5] * pa[a1 + 1] + pb[kb + 6] * pa[a1 + 2] + pb[kb + 7] * pa[a1 + 3];
      s4 := pb[kb + 5] * pa[a2 + 1] + pb[kb + 6] * pa[a2 + 2] + pb[kb + 7] * pa[a2 + 3];
      CONTINUE WHEN (s3 > 1e-15 AND s4 > 1e-15) OR (s3 < -1e-15 AND s4 < -1e-15)
        OR (proper AND (abs(s3) <= 1e-15 OR abs(s4) <= 1e-15));
      IF (abs(s1) <= 1e-15 AND abs(s2) <= 1e-15) OR (abs(s3) <= 1e-15 AND abs(s4) <= 1e-15) THEN
        -- both arcs on one great circle: they overlap if an end point of one lies on the other
        IF escape._on_arc(pb, b1, pa, ka) OR escape._on_arc(pb, b2, pa, ka)
           OR escape._on_arc(pa, a1, pb, kb) OR escape._on_arc(pa, a2, pb, kb) THEN
          RETURN true;
        END IF;
        CONTINUE;
      END IF;
      -- the point where each arc meets the other's great circle; same point, not antipodes?
      t := s1 / (s1 - s2); u := s3 / (s3 - s4);
      ybx := pb[b1 + 1] + t * (pb[b2 + 1] - pb[b1 + 1]);
      yby := pb[b1 + 2] + t * (pb[b2 + 2] - pb[b1 + 2]);
      ybz := pb[b1 + 3] + t * (pb[b2 + 3] - pb[b1 + 3]);
      yax := pa[a1 + 1] + u * (pa[a2 + 1] - pa[a1 + 1]);
      yay := pa[a1 + 2] + u * (pa[a2 + 2] - pa[a1 + 2]);
      yaz := pa[a1 + 3] + u * (pa[a2 + 3] - pa[a1 + 3]);
      IF yax * ybx + yay * yby + yaz * ybz > 0 THEN
        RETURN true;
      END IF;
    END LOOP;
  END LOOP;
  RETURN false;
END
$$;

------------------------------------------------------------------------------------------------
-- Predicates on prepared geometries
------------------------------------------------------------------------------------------------

-- a inside b (closed sets), 1/0.
CREATE OR REPLACE FUNCTION escape._contains(pa float8[], pb float8[]) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  ka int := pa[1]; kb int := pb[1];
  i int; v int; r float8;
BEGIN
  IF kb = 1 THEN  -- container is a point: only an equal point (or zero circle) is inside
    IF ka = 3 OR (ka = 2 AND pa[5] > 0) THEN
      RETURN 0;
    END IF;
    RETURN (escape._angle(pa[2], pa[3], pa[4], pb[2], pb[3], pb[4]) <= 1e-14)::int;
  ELSIF kb = 2 THEN
    r := pb[5];
    IF ka = 1 THEN
      RETURN (escape._angle(pa[2], pa[3], pa[4], pb[2], pb[3], pb[4]) <= r)::int;
    ELSIF r >= pi() THEN
      RETURN 1;
    ELSIF ka = 2 THEN
      RETURN (escape._angle(pa[2], pa[3], pa[4], pb[2], pb[3], pb[4]) + pa[5] <= r)::int;
    ELSIF r <= pi() / 2 THEN
      -- a cap of at most a hemisphere is convex: the polygon is inside if its vertices are
      FOR i IN 0 .. pa[2] - 1 LOOP
        v := 10 + 3 * i;
        IF escape._angle(pa[v + 1], pa[v + 2], pa[v + 3], pb[2], pb[3], pb[4]) > r THEN
          RETURN 0;
        END IF;
      END LOOP;
      RETURN 1;
    ELSE
      -- larger cap: the polygon must avoid the small cap around the antipode
      RETURN (NOT escape._poly_has(pa, -pb[2], -pb[3], -pb[4])
              AND escape._poly_dist(pa, -pb[2], -pb[3], -pb[4]) >= pi() - r)::int;
    END IF;
  ELSE
    IF ka = 1 THEN
      RETURN escape._poly_has(pb, pa[2], pa[3], pa[4])::int;
    ELSIF ka = 2 THEN
      IF pa[5] >= pi() THEN
        RETURN 0;
      END IF;
      RETURN (escape._poly_has(pb, pa[2], pa[3], pa[4])
              AND escape._poly_dist(pb, pa[2], pa[3], pa[4]) >= pa[5])::int;
    END IF;
    -- polygon in polygon: every vertex inside and no edge leaving through the boundary
    IF pb[4] > -2 AND escape._angle(pa[5], pa[6], pa[7], pb[5], pb[6], pb[7])
                      > pb[9] + 1e-12 THEN
      RETURN 0;
    END IF;
    FOR i IN 0 .. pa[2] - 1 LOOP
      v := 10 + 3 * i;
      IF NOT escape._poly_has(pb, pa[v + 1], pa[v + 2], pa[v + 3])
         AND escape._poly_dist(pb, pa[v + 1], pa[v + 2], pa[v + 3]) > 1e-15 THEN
        RETURN 0;  -- outside, and not on the boundary either
      END IF;
    END LOOP;
    RETURN (NOT escape._poly_edges_cross(pa, pb, true))::int;
  END IF;
END
$$;

-- a and b share at least one point, 1/0.
CREATE OR REPLACE FUNCTION escape._intersects(pa float8[], pb float8[]) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  p float8[];
  i int; v int; d float8;
BEGIN
  IF pa[1] > pb[1] THEN
    p := pa; pa := pb; pb := p;
  END IF;
  IF pb[1] < 3 THEN  -- point or circle against point or circle: centre to centre
    d := escape._angle(pa[2], pa[3], pa[4], pb[2], pb[3], pb[4]);
  END IF;
  IF pa[1] = 1 THEN
    IF pb[1] = 1 THEN
      RETURN (d <= 1e-14)::int;
    ELSIF pb[1] = 2 THEN
      RETURN (d <= pb[5])::int;
    END IF;
    RETURN escape._poly_has(pb, pa[2], pa[3], pa[4])::int;
  ELSIF pa[1] = 2 THEN
    IF pb[1] = 2 THEN
      RETURN (d <= pa[5] + pb[5])::int;
    END IF;
    IF pa[5] >= pi() THEN
      RETURN 1;
    END IF;
    RETURN (escape._poly_has(pb, pa[2], pa[3], pa[4])
            OR escape._poly_dist(pb, pa[2], pa[3], pa[4]) <= pa[5])::int;
  END IF;
  -- two polygons: disjoint bounding caps, then vertices inside the other, then edge crossings
  IF pa[4] > -2 AND pb[4] > -2
     AND escape._angle(pa[5], pa[6], pa[7], pb[5], pb[6], pb[7]) > pa[9] + pb[9] + 1e-12 THEN
    RETURN 0;
  END IF;
  FOR i IN 0 .. pa[2] - 1 LOOP
    v := 10 + 3 * i;
    IF escape._poly_has(pb, pa[v + 1], pa[v + 2], pa[v + 3]) THEN
      RETURN 1;
    END IF;
  END LOOP;
  FOR i IN 0 .. pb[2] - 1 LOOP
    v := 10 + 3 * i;
    IF escape._poly_has(pa, pb[v + 1], pb[v + 2], pb[v + 3]) THEN
      RETURN 1;
    END IF;
  END LOOP;
  RETURN escape._poly_edges_cross(pa, pb, false)::int;
END
$$;

------------------------------------------------------------------------------------------------
-- ADQL predicates. Point-in-circle (either argument order for INTERSECTS) is an inlined
-- haversine test: hav(d) <= hav(r), i.e. no asin/sqrt per row, exact for tiny radii; with a
-- constant circle the right-hand side and cos(dec0) fold to constants at plan time.
------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION escape.adql_contains(a float8[], b float8[]) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN cardinality(a) = 2 AND cardinality(b) = 3 AND b[3] BETWEEN 0 AND 'Infinity' THEN
      (power(sin(radians(a[2] - b[2]) / 2), 2)
       + cos(radians(a[2])) * cos(radians(b[2])) * power(sin(radians(a[1] - b[1]) / 2), 2)
       <= power(sin(radians(least(b[3], 180.0)) / 2), 2))::integer
    ELSE escape._contains(escape._geom_prep_fast(a), escape._geom_prep_fast(b))
  END
$$;

CREATE OR REPLACE FUNCTION escape.adql_intersects(a float8[], b float8[]) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN cardinality(a) = 2 AND cardinality(b) = 3 AND b[3] BETWEEN 0 AND 'Infinity' THEN
      (power(sin(radians(a[2] - b[2]) / 2), 2)
       + cos(radians(a[2])) * cos(radians(b[2])) * power(sin(radians(a[1] - b[1]) / 2), 2)
       <= power(sin(radians(least(b[3], 180.0)) / 2), 2))::integer
    WHEN cardinality(a) = 3 AND cardinality(b) = 2 AND a[3] BETWEEN 0 AND 'Infinity' THEN
      (power(sin(radians(b[2] - a[2]) / 2), 2)
       + cos(radians(b[2])) * cos(radians(a[2])) * power(sin(radians(b[1] - a[1]) / 2), 2)
       <= power(sin(radians(least(a[3], 180.0)) / 2), 2))::integer
    ELSE escape._intersects(escape._geom_prep_fast(a), escape._geom_prep_fast(b))
  END
$$;

------------------------------------------------------------------------------------------------
-- Measures
------------------------------------------------------------------------------------------------

-- Great-circle distance in degrees. Vincenty's atan2 form, with the cross-product terms rewritten
-- through sin(d dec) and sin^2(d ra / 2) so that nothing cancels: relative error ~1e-15 from
-- separations of 1e-11 deg up to exact antipodes. d ra is reduced to [-180, 180] first.
CREATE OR REPLACE FUNCTION escape.adql_distance(ra1 float8, dec1 float8, ra2 float8, dec2 float8)
RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT degrees(atan2(
    sqrt(power(cos(radians(dec2))
               * sin(radians((ra2 - ra1) - 360.0 * round((ra2 - ra1) / 360.0))), 2)
         + power(sin(radians(dec2 - dec1))
                 + 2 * sin(radians(dec1)) * cos(radians(dec2))
                   * power(sin(radians((ra2 - ra1) - 360.0 * round((ra2 - ra1) / 360.0)) / 2), 2),
                 2)),
    cos(radians(dec2 - dec1))
    - 2 * cos(radians(dec1)) * cos(radians(dec2))
      * power(sin(radians((ra2 - ra1) - 360.0 * round((ra2 - ra1) / 360.0)) / 2), 2)))
$$;

CREATE OR REPLACE FUNCTION escape.adql_distance(a float8[], b float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN a IS NULL OR b IS NULL THEN NULL
    WHEN cardinality(a) = 2 AND cardinality(b) = 2 THEN escape.adql_distance(a[1], a[2], b[1], b[2])
    ELSE escape._geom_raise('DISTANCE needs two points, got a ' || escape._geom_kind_name(a)
                            || ' and a ' || escape._geom_kind_name(b), NULL::float8)
  END
$$;

-- Area in square degrees: circle 4 pi sin^2(r/2) sr (= 2 pi (1 - cos r), without cancellation),
-- polygon by its spherical excess (the smaller region), point 0.
CREATE OR REPLACE FUNCTION escape.adql_area(g float8[]) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  p float8[] := escape._geom_prep(g);
BEGIN
  IF p IS NULL THEN
    RETURN NULL;
  ELSIF p[1] = 1 THEN
    RETURN 0;
  ELSIF p[1] = 2 THEN
    RETURN 4 * pi() * power(sin(p[5] / 2), 2) * power(180 / pi(), 2);
  END IF;
  RETURN p[8] * power(180 / pi(), 2);
END
$$;

-- Centroid as a point: a point itself, a circle's centre, a polygon's surface centroid (the
-- direction of the integral of the position vector over the region).
CREATE OR REPLACE FUNCTION escape.adql_centroid(g float8[]) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  p float8[] := escape._geom_prep(g);
  ra float8;
BEGIN
  IF p IS NULL THEN
    RETURN NULL;
  ELSIF p[1] < 3 THEN
    RETURN ARRAY[g[1], g[2]];
  END IF;
  ra := degrees(atan2(p[6], p[5]));
  IF ra < 0 THEN
    ra := ra + 360;
  END IF;
  RETURN ARRAY[ra, degrees(atan2(p[7], sqrt(p[5] * p[5] + p[6] * p[6])))];
END
$$;

CREATE OR REPLACE FUNCTION escape.adql_coord1(g float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(g) = 2 THEN g[1]
    WHEN g IS NULL THEN NULL
    ELSE escape._geom_raise('COORD1 needs a point, got a ' || escape._geom_kind_name(g),
                            NULL::float8) END
$$;

CREATE OR REPLACE FUNCTION escape.adql_coord2(g float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(g) = 2 THEN g[2]
    WHEN g IS NULL THEN NULL
    ELSE escape._geom_raise('COORD2 needs a point, got a ' || escape._geom_kind_name(g),
                            NULL::float8) END
$$;

------------------------------------------------------------------------------------------------
-- Polygon and box constructors
------------------------------------------------------------------------------------------------

-- POLYGON(ra1, dec1, ra2, dec2, ...): validated (the same rules as every predicate applies), the
-- vertices returned as given.
CREATE OR REPLACE FUNCTION escape.adql_polygon(VARIADIC v float8[]) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE COST 1000 AS $$
BEGIN
  IF v IS NULL OR array_position(v, NULL) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  IF cardinality(v) % 2 = 1 THEN
    RAISE EXCEPTION 'polygon needs pairs of coordinates, got % numbers', cardinality(v)
      USING ERRCODE = '22023';
  END IF;
  IF cardinality(v) < 6 THEN
    RAISE EXCEPTION 'polygon needs at least 3 vertices, got %', cardinality(v) / 2
      USING ERRCODE = '22023';
  END IF;
  PERFORM escape._geom_prep(v);
  RETURN v;
END
$$;

-- BOX(ra, dec, width, height) as a 4-vertex polygon; see the BOX rule at the top of this file.
CREATE OR REPLACE FUNCTION escape.adql_box(ra float8, "dec" float8, width float8, height float8)
RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  tw float8; th float8;
  cx float8; cy float8; cz float8; ex float8; ey float8; nx float8; ny float8; nz float8;
  x float8; y float8; z float8; r float8; lon float8;
  sx int; sy int; corner int;
  res float8[] := '{}';
BEGIN
  IF NOT ("dec" BETWEEN -90 AND 90) THEN
    RAISE EXCEPTION 'latitude % is outside [-90, 90]', "dec" USING ERRCODE = '22023';
  END IF;
  IF NOT (width > 0 AND width < 180 AND height > 0 AND height < 180) THEN
    RAISE EXCEPTION 'box width and height must be in (0, 180) degrees, got % and %',
      width, height USING ERRCODE = '22023';
  END IF;
  tw := tan(radians(width) / 2); th := tan(radians(height) / 2);
  cx := cos(radians("dec")) * cos(radians(ra)); cy := cos(radians("dec")) * sin(radians(ra));
  cz := sin(radians("dec"));
  ex := -sin(radians(ra)); ey := cos(radians(ra));                        -- east
  nx := -sin(radians("dec")) * cos(radians(ra)); ny := -sin(radians("dec")) * sin(radians(ra));
  nz := cos(radians("dec"));                                               -- north
  FOR corner IN 0 .. 3 LOOP
    sx := CASE WHEN corner IN (0, 3) THEN -1 ELSE 1 END;
    sy := CASE WHEN corner < 2 THEN -1 ELSE 1 END;
    x := cx + sx * tw * ex + sy * th * nx;
    y := cy + sx * tw * ey + sy * th * ny;
    z := cz + sy * th * nz;
    r := sqrt(x * x + y * y);
    lon := degrees(atan2(y, x));
    IF lon < 0 THEN
      lon := lon + 360;
    END IF;
    res := res || ARRAY[lon, degrees(atan2(z, r))];
  END LOOP;
  RETURN res;
END
$$;

------------------------------------------------------------------------------------------------
-- STC-S: 'POSITION ICRS ra dec', 'CIRCLE ICRS ra dec r', 'POLYGON ICRS ra1 dec1 ...',
-- 'BOX ICRS ra dec width height' (case-insensitive; frame, reference position and flavour words
-- optional; ICRS, FK5, J2000 and UNKNOWNFrame read as ICRS; other frames raise). Blank -> NULL.
------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION escape.stcs_to_geom(s text) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  tok text[];
  shape text;
  w text;
  i int := 2;
  nums float8[] := '{}';
BEGIN
  IF btrim(s, E' \t\r\n') = '' THEN
    RETURN NULL;
  END IF;
  tok := regexp_split_to_array(btrim(s, E' \t\r\n'), E'[\\s,]+');
  shape := upper(tok[1]);
  WHILE i <= cardinality(tok) AND tok[i] !~ '^[-+]?(\d|\.\d)' LOOP
    w := upper(tok[i]);
    IF w NOT IN ('ICRS', 'FK5', 'J2000', 'UNKNOWNFRAME', 'UNKNOWN', 'BARYCENTER', 'GEOCENTER',
                 'TOPOCENTER', 'HELIOCENTER', 'UNKNOWNREFPOS', 'SPHERICAL2', 'SPHER2') THEN
      RAISE EXCEPTION 'STC-S "%": frame or word "%" is not supported (positions must be ICRS)',
        s, tok[i] USING ERRCODE = '22023';
    END IF;
    i := i + 1;
  END LOOP;
  WHILE i <= cardinality(tok) LOOP
    IF tok[i] ~ '^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$' THEN
      nums := nums || tok[i]::float8;
    ELSIF upper(tok[i]) = 'UNIT' AND lower(coalesce(tok[i + 1], '')) IN ('deg', 'degree') THEN
      i := i + 1;
    ELSE
      RAISE EXCEPTION 'STC-S "%": "%" is not a number', s, tok[i] USING ERRCODE = '22023';
    END IF;
    i := i + 1;
  END LOOP;
  IF shape IN ('POSITION', 'POINT') AND cardinality(nums) = 2 THEN
    RETURN escape.adql_point(nums[1], nums[2]);
  ELSIF shape = 'CIRCLE' AND cardinality(nums) = 3 THEN
    RETURN escape.adql_circle(nums[1], nums[2], nums[3]);
  ELSIF shape = 'BOX' AND cardinality(nums) = 4 THEN
    RETURN escape.adql_box(nums[1], nums[2], nums[3], nums[4]);
  ELSIF shape = 'POLYGON' THEN
    RETURN escape.adql_polygon(VARIADIC nums);
  ELSIF shape IN ('POSITION', 'POINT', 'CIRCLE', 'BOX') THEN
    RAISE EXCEPTION 'STC-S "%": % needs % numbers, got %', s, shape,
      CASE shape WHEN 'CIRCLE' THEN 3 WHEN 'BOX' THEN 4 ELSE 2 END, cardinality(nums)
      USING ERRCODE = '22023';
  END IF;
  RAISE EXCEPTION 'STC-S "%": shape "%" is not supported (POSITION, CIRCLE, POLYGON, BOX)',
    s, tok[1] USING ERRCODE = '22023';
END
$$;

------------------------------------------------------------------------------------------------
-- HEALPix: nested index at order 0..29, the same cell as cdshealpix.nested.lonlat_to_healpix
-- (the projection and the arithmetic follow the cdshealpix Rust crate step by step, so cells agree
-- to the last bit; RA is reduced to [0, 360) first, like the ingest code does).
------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION escape.healpix_nest("order" integer, ra float8, "dec" float8)
RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  lon float8; lat float8; x float8; xpm1 float8; s float8; xp float8; yp float8;
  half float8;
  q int; qq int; d0h int; q01 int; q12 int; q1 int; q013 int;
  nside bigint; i bigint; j bigint;
BEGIN
  IF "order" < 0 OR "order" > 29 THEN
    RAISE EXCEPTION 'HEALPix order must be in [0, 29], got %', "order" USING ERRCODE = '22023';
  END IF;
  IF NOT ("dec" BETWEEN -90 AND 90) THEN
    RAISE EXCEPTION 'latitude % is outside [-90, 90]', "dec" USING ERRCODE = '22023';
  END IF;
  IF ra = 'NaN' OR ra = 'Infinity' OR ra = '-Infinity' THEN
    RAISE EXCEPTION 'longitude % is not finite', ra USING ERRCODE = '22023';
  END IF;
  lon := ra - 360.0 * floor(ra / 360.0);
  IF lon >= 360.0 THEN
    lon := lon - 360.0;
  END IF;
  lat := radians("dec");
  x := radians(lon) * 1.2732395447351628;                     -- 4 / pi
  q := floor(x)::int | 1;
  xpm1 := x - q;
  qq := (q & 7) >> 1;
  IF lat > 0.7297276562269663 THEN                            -- asin(2/3): north polar cap
    s := 2.449489742783178 * cos(0.5 * lat + 0.7853981633974483);
    xp := xpm1 * s; yp := 2.0 - s; d0h := qq;
  ELSIF lat < -0.7297276562269663 THEN                        -- south polar cap
    s := 2.449489742783178 * cos(0.5 * lat - 0.7853981633974483);
    xp := xpm1 * s; yp := s; d0h := qq + 8;
  ELSE                                                        -- equatorial belt
    s := sin(lat) / 0.6666666666666666;
    q01 := (xpm1 > s)::int; q12 := (xpm1 >= -s)::int; q1 := q01 & q12;
    q013 := q01 + (1 - q12);
    xp := xpm1 - (q01 + q12 - 1); yp := s + q013;
    d0h := (q013 << 2) + ((qq + q1) & 3);
  END IF;
  nside := 1::bigint << "order";
  half := nside / 2.0;
  i := least(nside - 1, greatest(0, floor((yp + xp) * half)))::bigint;
  j := least(nside - 1, greatest(0, floor((yp - xp) * half)))::bigint;
  -- interleave: bits of i at even, bits of j at odd positions
  i := (i | (i << 16)) & x'0000FFFF0000FFFF'::bigint;
  i := (i | (i << 8)) & x'00FF00FF00FF00FF'::bigint;
  i := (i | (i << 4)) & x'0F0F0F0F0F0F0F0F'::bigint;
  i := (i | (i << 2)) & x'3333333333333333'::bigint;
  i := (i | (i << 1)) & x'5555555555555555'::bigint;
  j := (j | (j << 16)) & x'0000FFFF0000FFFF'::bigint;
  j := (j | (j << 8)) & x'00FF00FF00FF00FF'::bigint;
  j := (j | (j << 4)) & x'0F0F0F0F0F0F0F0F'::bigint;
  j := (j | (j << 2)) & x'3333333333333333'::bigint;
  j := (j | (j << 1)) & x'5555555555555555'::bigint;
  RETURN (d0h::bigint << (2 * "order")) | i | (j << 1);
END
$$;

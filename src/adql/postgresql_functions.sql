-- The ADQL geometry functions of pixserve for PostgreSQL: the same names,
-- arities and results as the C++ user functions that SQLite calls
-- (adql/sql_functions.cpp over adql/geometry_functions.cpp and sky/), written
-- in SQL and PL/pgSQL because PostgreSQL cannot run C++ inside a statement.
--
-- Geometry values are STC-S text ("CIRCLE ICRS 10 20 0.5"); angles are
-- degrees, areas square degrees, truth values the integers 0 and 1, and a
-- NULL argument gives NULL. Invalid geometry raises an error (SQLSTATE
-- 22023) with the message the C++ code gives.
--
-- The computations follow the C++ code operation by operation (the same
-- formulas, the same order of floating-point operations, the same
-- tolerances), so that both backends answer alike even for a point lying
-- exactly on a boundary. Where the C++ calls std::hypot, adql__hypot
-- reproduces the C library's algorithm, which PostgreSQL does not expose.
-- (Vectors are passed as their components; "by" being a PL/pgSQL keyword,
-- the y component of b is b_y.)
--
-- Names starting with adql_ are the public functions; adql__ ones are
-- helpers. The wrappers written in SQL are inlined by the planner, so a
-- constant geometry argument (the search shape of a query) is parsed and
-- prepared once per statement rather than once per row.
--
-- Idempotent: every object is created with CREATE OR REPLACE. The whole
-- script runs as one transaction when sent as one simple query, and the
-- advisory lock below makes concurrent installers take turns rather than
-- fail on the catalogue rows they both update.
--
-- Limits: PostgreSQL raises an error where a product or quotient of
-- non-zero numbers underflows to 0, where C++ silently gives 0: coordinates
-- (other than 0) must stay above about 1e-300 in magnitude, and shapes
-- above about 1e-150 degrees in size.

SELECT pg_advisory_xact_lock(7308604896906797377);

-- ------------------------------------------------------------ scalar helpers

-- sin and cos of an angle in degrees in [-180, 180], by exact quadrant
-- reduction (sincos_deg in sky/geometry.cpp): multiples of 90 give exact
-- 0 and +-1. The quadrant limits are where round(r / 90) changes; the tests
-- are nested so that a call makes two or three comparisons.
CREATE OR REPLACE FUNCTION adql__sind_r(r float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN r < 45 THEN
                CASE WHEN r > -45 THEN sin(r * 0.017453292519943295::float8)
                     WHEN r > -135 THEN -cos((r + 90) * 0.017453292519943295::float8)
                     ELSE -sin((r + 180) * 0.017453292519943295::float8) END
              WHEN r < 135 THEN cos((r - 90) * 0.017453292519943295::float8)
              ELSE -sin((r - 180) * 0.017453292519943295::float8) END
$$;

CREATE OR REPLACE FUNCTION adql__cosd_r(r float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN r < 45 THEN
                CASE WHEN r > -45 THEN cos(r * 0.017453292519943295::float8)
                     WHEN r > -135 THEN sin((r + 90) * 0.017453292519943295::float8)
                     ELSE -cos((r + 180) * 0.017453292519943295::float8) END
              WHEN r < 135 THEN -sin((r - 90) * 0.017453292519943295::float8)
              ELSE -cos((r - 180) * 0.017453292519943295::float8) END
$$;

-- remainder(x, 360) for x in (-540, 540), the only range the callers pass
-- (normalised RAs, declinations and their differences).
CREATE OR REPLACE FUNCTION adql__rem360(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN x > 180 THEN x - 360 WHEN x < -180 THEN x + 360 ELSE x END
$$;

-- sin and cos in degrees for x in [-180, 360] (declinations, differences
-- and normalised RAs), reduced to [-180, 180] as remainder(x, 360) does.
CREATE OR REPLACE FUNCTION adql__sind(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN x > 180 THEN adql__sind_r(x - 360) ELSE adql__sind_r(x) END
$$;

CREATE OR REPLACE FUNCTION adql__cosd(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN x > 180 THEN adql__cosd_r(x - 360) ELSE adql__cosd_r(x) END
$$;

-- fmod(x, 360) for |x| >= 2^52, exactly: long division by 360 * 2^k, each
-- subtraction exact since the divisor is within a factor two of the rest.
CREATE OR REPLACE FUNCTION adql__fmod360_big(x float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  r float8 := abs(x);
  d float8 := 360;
BEGIN
  WHILE d <= r / 2 LOOP  -- not d * 2 <= r, which could overflow
    d := d * 2;
  END LOOP;
  WHILE d >= 360 LOOP
    IF r >= d THEN
      r := r - d;
    END IF;
    d := d / 2;
  END LOOP;
  RETURN CASE WHEN x < 0 THEN -r ELSE r END;
END
$$;

-- normalize_ra: to [0, 360), no -0. Below 2^52 the quotient can be off by
-- one only where it rounds up to an integer, which the sign fix-up absorbs;
-- within one turn there is nothing to divide (which also spares a tiny RA
-- PostgreSQL's underflow error).
CREATE OR REPLACE FUNCTION adql__nra_fix(r float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN r < 0 THEN (CASE WHEN r + 360 >= 360 THEN 0::float8 ELSE r + 360 END)
              WHEN r >= 360 THEN 0::float8
              ELSE r END + 0::float8
$$;

CREATE OR REPLACE FUNCTION adql__nra(ra float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN ra >= 0 AND ra < 360 THEN ra + 0::float8
              WHEN ra > -360 AND ra < 0 THEN adql__nra_fix(ra)
              WHEN abs(ra) < 4503599627370496 THEN adql__nra_fix(ra - 360 * trunc(ra / 360))
              WHEN abs(ra) < 'Infinity'::float8 THEN adql__nra_fix(adql__fmod360_big(ra))
              ELSE ra END
$$;

CREATE OR REPLACE FUNCTION adql__dot(ax float8, ay float8, az float8, bx float8, b_y float8, bz float8)
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT ax * bx + ay * b_y + az * bz $$;

CREATE OR REPLACE FUNCTION adql__norm(x float8, y float8, z float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT sqrt(x * x + y * y + z * z) $$;

-- angle_between: atan2(|a x b|, a.b) with the cross product taken as
-- (b + a) x (b - a) / 2, which keeps its precision for nearby vectors.
CREATE OR REPLACE FUNCTION adql__angle(ax float8, ay float8, az float8, bx float8, b_y float8, bz float8)
RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT atan2(0.5::float8 * adql__norm((b_y + ay) * (bz - az) - (bz + az) * (b_y - ay),
                                        (bz + az) * (bx - ax) - (bx + ax) * (bz - az),
                                        (bx + ax) * (b_y - ay) - (b_y + ay) * (bx - ax)),
               adql__dot(ax, ay, az, bx, b_y, bz))
$$;

-- std::min / std::max: the first argument unless the second is strictly
-- smaller / larger.
CREATE OR REPLACE FUNCTION adql__min(a float8, b float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN b < a THEN b ELSE a END $$;

CREATE OR REPLACE FUNCTION adql__max(a float8, b float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN a < b THEN b ELSE a END $$;

CREATE OR REPLACE FUNCTION adql__finite(x float8) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT abs(x) < 'Infinity'::float8 $$;

-- The C library's hypot (correctly rounded in practice: one Newton step
-- after the plain square root), so that distances agree to the last bit.
CREATE OR REPLACE FUNCTION adql__hypot(x float8, y float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  ax float8;
  ay float8;
  h float8;
  d float8;
  t1 float8;
  t2 float8;
  scaled boolean := false;
BEGIN
  x := abs(x);
  y := abs(y);
  IF x < y THEN
    ax := y;
    ay := x;
  ELSE
    ax := x;
    ay := y;
  END IF;
  IF ax > 6.703903964971299e+153::float8 THEN
    IF ay <= ax * 5.551115123125783e-17::float8 THEN
      RETURN ax + ay;
    END IF;
    ax := ax * 2.409919865102884e-181::float8;
    ay := ay * 2.409919865102884e-181::float8;
    h := adql__hypot(ax, ay);
    RETURN h / 2.409919865102884e-181::float8;
  END IF;
  IF ay < 1.4916681462400413e-154::float8 THEN
    IF ax >= ay / 5.551115123125783e-17::float8 THEN
      RETURN ax + ay;
    END IF;
    ax := ax / 2.409919865102884e-181::float8;
    ay := ay / 2.409919865102884e-181::float8;
    scaled := true;
  ELSIF ay <= ax * 5.551115123125783e-17::float8 THEN
    RETURN ax + ay;
  END IF;
  h := sqrt(ax * ax + ay * ay);
  IF h <= 2::float8 * ay THEN
    d := h - ay;
    t1 := ax * (2::float8 * d - ax);
    t2 := (d - 2::float8 * (ax - ay)) * d;
  ELSE
    d := h - ax;
    t1 := 2::float8 * d * (ax - 2::float8 * ay);
    t2 := (4::float8 * d - ay) * ay + d * d;
  END IF;
  h := h - (t1 + t2) / (2::float8 * h);
  IF scaled THEN
    h := h * 2.409919865102884e-181::float8;
  END IF;
  RETURN h;
END
$$;

-- ---------------------------------------------------------------- text forms

-- A number as fmt's "{}" writes it: the shortest text that reads back as
-- the same double. PostgreSQL writes that too (with extra_float_digits > 0,
-- which the SET below guarantees), except that it switches to an exponent
-- one decade earlier (1e+15 where fmt writes 1000000000000000).
CREATE OR REPLACE FUNCTION adql__fmt_text(t text) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  m text[];
  frac text;
BEGIN
  m := regexp_match(t, '^(-?)([0-9])(?:\.([0-9]+))?e\+15$');
  IF m IS NULL THEN
    RETURN t;
  END IF;
  frac := coalesce(m[3], '');
  IF length(frac) <= 15 THEN
    RETURN m[1] || m[2] || rpad(frac, 15, '0');
  END IF;
  RETURN m[1] || m[2] || left(frac, 15) || '.' || substr(frac, 16);
END
$$;

CREATE OR REPLACE FUNCTION adql__fmt(x float8) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET extra_float_digits = 3 AS $$
  SELECT adql__fmt_text(CASE WHEN x = 'NaN'::float8 THEN 'nan'
                             WHEN x = 'Infinity'::float8 THEN 'inf'
                             WHEN x = '-Infinity'::float8 THEN '-inf'
                             ELSE x::text END)
$$;

-- format_real in adql/sql_text.cpp: as adql__fmt, and a real always has a
-- '.' or an exponent.
CREATE OR REPLACE FUNCTION adql__real_text(t text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE WHEN strpos(t, '.') > 0 OR strpos(t, 'e') > 0 OR strpos(t, 'n') > 0 THEN t ELSE t || '.0' END
$$;

-- A parsed geometry (see adql__parse) as STC-S text with frame ICRS.
CREATE OR REPLACE FUNCTION adql__stcs(g float8[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET extra_float_digits = 3 AS $$
DECLARE
  kind int := g[1];
  out text;
  i int;
  first int;
  last int;
BEGIN
  IF kind = 1 THEN
    out := 'POINT ICRS';
    first := 2;
    last := 3;
  ELSIF kind = 2 THEN
    out := 'CIRCLE ICRS';
    first := 2;
    last := 4;
  ELSIF kind = 4 THEN
    out := 'BOX ICRS';
    first := 2;
    last := 5;
  ELSE
    out := 'POLYGON ICRS';
    first := 3;
    last := 2 + 2 * g[2]::int;
  END IF;
  FOR i IN first .. last LOOP
    out := out || ' ' || adql__real_text(adql__fmt_text(g[i]::text));
  END LOOP;
  RETURN out;
END
$$;

-- The message of an error that the polygon check returns as
-- {-1, code, a, b} rather than raising, so that the functions calling it
-- raise it as their own.
CREATE OR REPLACE FUNCTION adql__error_text(e float8[]) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE e[2]::int
    WHEN 1 THEN 'a polygon needs an even number of coordinates'
    WHEN 2 THEN 'a polygon needs at least 3 vertices'
    WHEN 3 THEN 'geometry coordinates must be finite numbers'
    WHEN 4 THEN 'declination ' || adql__fmt(e[3]) || ' is outside [-90, 90]'
    WHEN 5 THEN 'invalid polygon: a polygon needs at least 3 distinct vertices, got ' || e[3]::int
    WHEN 6 THEN 'invalid polygon: polygon vertices ' || e[3]::int || ' and ' || e[4]::int || ' are the same point'
    WHEN 7 THEN 'invalid polygon: polygon vertices ' || e[3]::int || ' and ' || e[4]::int
                || ' are antipodal: the edge between them is undefined'
    WHEN 8 THEN 'invalid polygon: polygon folds back on itself at vertex ' || e[3]::int
    WHEN 9 THEN 'invalid polygon: polygon is self-intersecting: edges ' || e[3]::int || ' and ' || e[4]::int || ' meet'
    WHEN 10 THEN 'invalid polygon: polygon has zero area'
    ELSE 'invalid geometry' END
$$;

-- ------------------------------------------------------ spherical primitives

-- Distance in radians between two sky points (normalised RA), Vincenty's
-- form with the differences taken in degrees (distance_rad in
-- sky/geometry.cpp), the C library's hypot written in place: this runs once
-- per row of a cone search.
CREATE OR REPLACE FUNCTION adql__dist_rad(ra1 float8, dec1 float8, ra2 float8, dec2 float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  s1 float8 := adql__sind(dec1);
  c2 float8 := adql__cosd(dec2);
  dra float8 := ra2 - ra1;
  d float8 := adql__rem360(ra2) - adql__rem360(ra1);
  sh float8;
  x float8;
  y float8;
  h float8;
BEGIN
  -- The RA difference without the rounding of a difference close to 360.
  IF abs(d) < abs(dra) THEN
    dra := d;
  END IF;
  dra := adql__rem360(dra);
  sh := adql__sind(0.5::float8 * dra);
  x := abs(c2 * adql__sind(dra));
  y := abs(adql__sind(dec2 - dec1) + 2::float8 * s1 * c2 * sh * sh);
  IF x < y THEN
    d := x;
    x := y;
    y := d;
  END IF;
  IF y < 1.4916681462400413e-154::float8 OR x > 6.703903964971299e+153::float8 THEN
    h := adql__hypot(x, y);
  ELSIF y <= x * 5.551115123125783e-17::float8 THEN
    h := x + y;
  ELSE
    h := sqrt(x * x + y * y);
    IF h <= 2::float8 * y THEN
      d := h - y;
      h := h - (x * (2::float8 * d - x) + (d - 2::float8 * (x - y)) * d) / (2::float8 * h);
    ELSE
      d := h - x;
      h := h - (2::float8 * d * (x - 2::float8 * y) + ((4::float8 * d - y) * y + d * d)) / (2::float8 * h);
    END IF;
  END IF;
  RETURN atan2(h, s1 * adql__sind(dec2) + adql__cosd(dec1) * c2 * adql__cosd(dra));
END
$$;

CREATE OR REPLACE FUNCTION adql__dist_deg(ra1 float8, dec1 float8, ra2 float8, dec2 float8) RETURNS float8
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT adql__dist_rad(ra1, dec1, ra2, dec2) * 57.29577951308232::float8
$$;

-- to_sky: {ra, dec} of a vector (need not be unit); {0, 0} for zero.
CREATE OR REPLACE FUNCTION adql__to_sky(x float8, y float8, z float8) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  decl float8;
BEGIN
  IF x = 0 AND y = 0 AND z = 0 THEN
    RETURN '{0,0}'::float8[];
  END IF;
  decl := atan2(z, adql__hypot(x, y)) * 57.29577951308232::float8;
  decl := CASE WHEN decl < -90 THEN -90::float8 WHEN 90 < decl THEN 90::float8 ELSE decl END;
  RETURN ARRAY[adql__nra(atan2(y, x) * 57.29577951308232::float8), decl];
END
$$;

-- Shortest distance (radians) from p to the great-circle arc a->b.
CREATE OR REPLACE FUNCTION adql__arc_dist(px float8, py float8, pz float8, ax float8, ay float8, az float8,
                                          bx float8, b_y float8, bz float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  nx float8 := (b_y + ay) * (bz - az) - (bz + az) * (b_y - ay);
  ny float8 := (bz + az) * (bx - ax) - (bx + ax) * (bz - az);
  nz float8 := (bx + ax) * (b_y - ay) - (b_y + ay) * (bx - ax);
  e1 float8 := adql__angle(px, py, pz, ax, ay, az);
  e2 float8 := adql__angle(px, py, pz, bx, b_y, bz);
  ends float8 := adql__min(e1, e2);
  nn float8 := adql__norm(nx, ny, nz);
  inv float8;
  t float8;
  xx float8;
  xy float8;
  xz float8;
  xn float8;
BEGIN
  IF nn = 0 THEN
    RETURN ends;
  END IF;
  inv := 1::float8 / nn;
  t := adql__dot(px, py, pz, inv * nx, inv * ny, inv * nz);
  xx := px - t * (inv * nx);
  xy := py - t * (inv * ny);
  xz := pz - t * (inv * nz);
  xn := adql__norm(xx, xy, xz);
  IF xn < 1e-300::float8 THEN
    RETURN ends;
  END IF;
  -- Whether the foot of the perpendicular lies on the arc.
  IF NOT (adql__dot(ay * xz - az * xy, az * xx - ax * xz, ax * xy - ay * xx, nx, ny, nz) >= 0
          AND adql__dot(xy * bz - xz * b_y, xz * bx - xx * bz, xx * b_y - xy * bx, nx, ny, nz) >= 0) THEN
    RETURN ends;
  END IF;
  t := atan2(adql__norm(px - xx, py - xy, pz - xz), xn);
  RETURN adql__min(ends, t);
END
$$;

-- Largest distance (radians) from p to a point of the arc a->b.
CREATE OR REPLACE FUNCTION adql__arc_max_dist(px float8, py float8, pz float8, ax float8, ay float8, az float8,
                                              bx float8, b_y float8, bz float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  nx float8 := (b_y + ay) * (bz - az) - (bz + az) * (b_y - ay);
  ny float8 := (bz + az) * (bx - ax) - (bx + ax) * (bz - az);
  nz float8 := (bx + ax) * (b_y - ay) - (b_y + ay) * (bx - ax);
  e1 float8 := adql__angle(px, py, pz, ax, ay, az);
  e2 float8 := adql__angle(px, py, pz, bx, b_y, bz);
  best float8 := adql__max(e1, e2);
  nn float8 := adql__norm(nx, ny, nz);
  inv float8;
  t float8;
  fx float8;
  fy float8;
  fz float8;
BEGIN
  IF nn = 0 THEN
    RETURN best;
  END IF;
  inv := 1::float8 / nn;
  t := adql__dot(px, py, pz, inv * nx, inv * ny, inv * nz);
  fx := px - t * (inv * nx);
  fy := py - t * (inv * ny);
  fz := pz - t * (inv * nz);
  IF adql__norm(fx, fy, fz) < 1e-300::float8 THEN
    RETURN best;
  END IF;
  -- The farthest point of the great circle is opposite p's projection.
  fx := -fx;
  fy := -fy;
  fz := -fz;
  IF adql__dot(ay * fz - az * fy, az * fx - ax * fz, ax * fy - ay * fx, nx, ny, nz) >= 0
     AND adql__dot(fy * bz - fz * b_y, fz * bx - fx * bz, fx * b_y - fy * bx, nx, ny, nz) >= 0 THEN
    t := adql__angle(px, py, pz, fx, fy, fz);
    best := adql__max(best, t);
  END IF;
  RETURN best;
END
$$;

-- Strict crossing of arcs a->b and c->d at one interior point, exact signs
-- (arcs_cross_strictly in sky/geometry.cpp).
CREATE OR REPLACE FUNCTION adql__cross_exact(ax float8, ay float8, az float8, bx float8, b_y float8, bz float8,
                                             cx float8, cy float8, cz float8, dx float8, dy float8, dz float8)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  nx float8 := (b_y + ay) * (bz - az) - (bz + az) * (b_y - ay);
  ny float8 := (bz + az) * (bx - ax) - (bx + ax) * (bz - az);
  nz float8 := (bx + ax) * (b_y - ay) - (b_y + ay) * (bx - ax);
  acb float8 := -adql__dot(nx, ny, nz, cx, cy, cz);
  bda float8 := adql__dot(nx, ny, nz, dx, dy, dz);
  cbd float8;
  dac float8;
BEGIN
  IF acb = 0 OR bda = 0 OR (acb > 0) <> (bda > 0) THEN
    RETURN false;
  END IF;
  nx := (dy + cy) * (dz - cz) - (dz + cz) * (dy - cy);
  ny := (dz + cz) * (dx - cx) - (dx + cx) * (dz - cz);
  nz := (dx + cx) * (dy - cy) - (dy + cy) * (dx - cx);
  cbd := -adql__dot(nx, ny, nz, bx, b_y, bz);
  dac := adql__dot(nx, ny, nz, ax, ay, az);
  IF cbd = 0 OR dac = 0 THEN
    RETURN false;
  END IF;
  RETURN (acb > 0) = (cbd > 0) AND (acb > 0) = (dac > 0);
END
$$;

-- orientation() of adql/geometry_functions.cpp: the side of c relative to
-- the arc a->b, 0 within the boundary tolerance.
CREATE OR REPLACE FUNCTION adql__orient(ax float8, ay float8, az float8, bx float8, b_y float8, bz float8,
                                        cx float8, cy float8, cz float8) RETURNS int
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  d float8 := adql__dot((b_y + ay) * (bz - az) - (bz + az) * (b_y - ay),
                        (bz + az) * (bx - ax) - (bx + ax) * (bz - az),
                        (bx + ax) * (b_y - ay) - (b_y + ay) * (bx - ax), cx, cy, cz);
BEGIN
  RETURN CASE WHEN d > 1e-14::float8 THEN 1 WHEN d < -1e-14::float8 THEN -1 ELSE 0 END;
END
$$;

-- Strict crossing with the tolerance of orientation() (arcs_cross_strictly
-- in adql/geometry_functions.cpp).
CREATE OR REPLACE FUNCTION adql__cross_tol(ax float8, ay float8, az float8, bx float8, b_y float8, bz float8,
                                           cx float8, cy float8, cz float8, dx float8, dy float8, dz float8)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  acb int := -adql__orient(ax, ay, az, bx, b_y, bz, cx, cy, cz);
BEGIN
  IF acb = 0 THEN
    RETURN false;
  END IF;
  IF adql__orient(ax, ay, az, bx, b_y, bz, dx, dy, dz) <> acb THEN
    RETURN false;
  END IF;
  IF -adql__orient(cx, cy, cz, dx, dy, dz, bx, b_y, bz) <> acb THEN
    RETURN false;
  END IF;
  RETURN adql__orient(cx, cy, cz, dx, dy, dz, ax, ay, az) = acb;
END
$$;

-- Signed area (steradians) of the region left of the closed vertex chain,
-- in (-2 pi, 2 pi]: a fan of triangles from an apex with no antipodal
-- vertex, each by Van Oosterom & Strackee on the differences.
CREATE OR REPLACE FUNCTION adql__signed_area(vx float8[], vy float8[], vz float8[], n int) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  apex int := 1;
  k int;
  i int;
  ok boolean;
  s float8 := 0;
  ax float8;
  ay float8;
  az float8;
  b int;
  c int;
  ux float8;
  uy float8;
  uz float8;
  wx float8;
  wy float8;
  wz float8;
BEGIN
  IF n < 3 THEN
    RETURN 0;
  END IF;
  FOR k IN 1 .. n LOOP
    ok := true;
    i := 1;
    WHILE i <= n AND ok LOOP
      ok := adql__dot(vx[k], vy[k], vz[k], vx[i], vy[i], vz[i]) > -0.999999999::float8;
      i := i + 1;
    END LOOP;
    IF ok THEN
      apex := k;
      EXIT;
    END IF;
  END LOOP;
  ax := vx[apex];
  ay := vy[apex];
  az := vz[apex];
  FOR i IN 1 .. n - 2 LOOP
    b := (apex - 1 + i) % n + 1;
    c := (apex + i) % n + 1;
    ux := vx[b] - ax;
    uy := vy[b] - ay;
    uz := vz[b] - az;
    wx := vx[c] - ax;
    wy := vy[c] - ay;
    wz := vz[c] - az;
    s := s + 2::float8 * atan2(adql__dot(ax, ay, az, uy * wz - uz * wy, uz * wx - ux * wz, ux * wy - uy * wx),
                               1::float8 + adql__dot(ax, ay, az, vx[b], vy[b], vz[b])
                                 + adql__dot(vx[b], vy[b], vz[b], vx[c], vy[c], vz[c])
                                 + adql__dot(vx[c], vy[c], vz[c], ax, ay, az));
  END LOOP;
  WHILE s > 6.283185307179586::float8 LOOP
    s := s - 12.566370614359172::float8;
  END LOOP;
  WHILE s <= -6.283185307179586::float8 LOOP
    s := s + 12.566370614359172::float8;
  END LOOP;
  RETURN s;
END
$$;

-- ------------------------------------------------------------------ polygons

-- make_polygon and the sky::Polygon constructor: the checked vertex list
-- {3, n, ra1, dec1, ...}, counter-clockwise, a repeated closing vertex
-- dropped; or {-1, code, ...} for adql__error_text.
CREATE OR REPLACE FUNCTION adql__polygon_core(c float8[]) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  m int := coalesce(array_length(c, 1), 0);
  n int;
  i int;
  j int;
  i1 int;
  j1 int;
  a float8;
  d float8;
  rd float8[];  -- the normalised vertices, ra1, dec1, ...
  vx float8[];
  vy float8[];
  vz float8[];
  nx float8[];
  ny float8[];
  nz float8[];
  mx float8[];
  my float8[];
  mz float8[];
  half float8[];
  cd float8;
  wx float8;
  wy float8;
  wz float8;
  len float8;
  s float8;
  out float8[];
BEGIN
  IF m % 2 <> 0 THEN
    RETURN '{-1,1}'::float8[];
  END IF;
  IF m < 6 THEN
    RETURN '{-1,2}'::float8[];
  END IF;
  n := m / 2;
  FOR i IN 1 .. n LOOP
    a := c[2 * i - 1];
    d := c[2 * i];
    IF NOT (adql__finite(a) AND adql__finite(d)) THEN
      RETURN '{-1,3}'::float8[];
    END IF;
    IF d < -90 OR d > 90 THEN
      RETURN ARRAY[-1, 4, d];
    END IF;
    a := adql__nra(a);
    d := d + 0::float8;
    rd[2 * i - 1] := a;
    rd[2 * i] := d;
    cd := adql__cosd(d);
    vx[i] := cd * adql__cosd(a);
    vy[i] := cd * adql__sind(a);
    vz[i] := adql__sind(d);
  END LOOP;
  -- STC-S writers sometimes repeat the first vertex to close the polygon.
  IF adql__norm(vx[1] - vx[n], vy[1] - vy[n], vz[1] - vz[n]) <= 1e-14::float8 THEN
    n := n - 1;
  END IF;
  IF n < 3 THEN
    RETURN ARRAY[-1, 5, n];
  END IF;
  -- Each edge: its end points distinct and not antipodal, its unit normal,
  -- unit midpoint and half length.
  FOR i IN 1 .. n LOOP
    j := i % n + 1;
    IF adql__norm(vx[i] - vx[j], vy[i] - vy[j], vz[i] - vz[j]) <= 1e-14::float8 THEN
      RETURN ARRAY[-1, 6, i - 1, j - 1];
    END IF;
    IF adql__norm(vx[i] + vx[j], vy[i] + vy[j], vz[i] + vz[j]) <= 1e-14::float8 THEN
      RETURN ARRAY[-1, 7, i - 1, j - 1];
    END IF;
    wx := (vy[j] + vy[i]) * (vz[j] - vz[i]) - (vz[j] + vz[i]) * (vy[j] - vy[i]);
    wy := (vz[j] + vz[i]) * (vx[j] - vx[i]) - (vx[j] + vx[i]) * (vz[j] - vz[i]);
    wz := (vx[j] + vx[i]) * (vy[j] - vy[i]) - (vy[j] + vy[i]) * (vx[j] - vx[i]);
    len := 1::float8 / adql__norm(wx, wy, wz);  -- not 0: the ends are distinct and not antipodal
    nx[i] := len * wx;
    ny[i] := len * wy;
    nz[i] := len * wz;
    wx := vx[i] + vx[j];
    wy := vy[i] + vy[j];
    wz := vz[i] + vz[j];
    len := 1::float8 / adql__norm(wx, wy, wz);
    mx[i] := len * wx;
    my[i] := len * wy;
    mz[i] := len * wz;
    half[i] := 0.5::float8 * adql__angle(vx[i], vy[i], vz[i], vx[j], vy[j], vz[j]);
  END LOOP;
  -- Consecutive edges folding back onto each other overlap.
  FOR i IN 1 .. n LOOP
    j := i % n + 1;
    IF adql__angle(nx[i], ny[i], nz[i], nx[j], ny[j], nz[j]) > 3.141592653489793::float8 THEN
      RETURN ARRAY[-1, 8, j - 1];
    END IF;
  END LOOP;
  -- Edges that are not neighbours must not meet. A point farther than
  -- 1e-12 from an edge's great circle is farther than the 1e-14 of the
  -- touching test from the edge, which spares most distance computations.
  FOR i IN 1 .. n LOOP
    i1 := i % n + 1;
    FOR j IN i + 2 .. n LOOP
      CONTINUE WHEN i = 1 AND j = n;  -- adjacent through the closing edge
      s := half[i] + half[j] + 1e-14::float8;
      CONTINUE WHEN NOT (s >= 3.141592653589793::float8
                         OR adql__dot(mx[i], my[i], mz[i], mx[j], my[j], mz[j]) >= cos(s) - 1e-15::float8);
      j1 := j % n + 1;
      IF adql__cross_exact(vx[i], vy[i], vz[i], vx[i1], vy[i1], vz[i1], vx[j], vy[j], vz[j], vx[j1], vy[j1], vz[j1])
         OR (abs(adql__dot(nx[i], ny[i], nz[i], vx[j], vy[j], vz[j])) <= 1e-12::float8
             AND adql__arc_dist(vx[j], vy[j], vz[j], vx[i], vy[i], vz[i], vx[i1], vy[i1], vz[i1]) <= 1e-14::float8)
         OR (abs(adql__dot(nx[i], ny[i], nz[i], vx[j1], vy[j1], vz[j1])) <= 1e-12::float8
             AND adql__arc_dist(vx[j1], vy[j1], vz[j1], vx[i], vy[i], vz[i], vx[i1], vy[i1], vz[i1]) <= 1e-14::float8)
         OR (abs(adql__dot(nx[j], ny[j], nz[j], vx[i], vy[i], vz[i])) <= 1e-12::float8
             AND adql__arc_dist(vx[i], vy[i], vz[i], vx[j], vy[j], vz[j], vx[j1], vy[j1], vz[j1]) <= 1e-14::float8)
         OR (abs(adql__dot(nx[j], ny[j], nz[j], vx[i1], vy[i1], vz[i1])) <= 1e-12::float8
             AND adql__arc_dist(vx[i1], vy[i1], vz[i1], vx[j], vy[j], vz[j], vx[j1], vy[j1], vz[j1]) <= 1e-14::float8) THEN
        RETURN ARRAY[-1, 9, i - 1, j - 1];
      END IF;
    END LOOP;
  END LOOP;
  s := adql__signed_area(vx, vy, vz, n);
  IF NOT (abs(s) > 0) THEN
    RETURN '{-1,10}'::float8[];
  END IF;
  out := ARRAY[3, n]::float8[];
  IF s >= 0 THEN
    RETURN out || rd[1 : 2 * n];
  END IF;
  FOR i IN REVERSE n .. 1 LOOP
    out := out || rd[2 * i - 1] || rd[2 * i];
  END LOOP;
  RETURN out;
END
$$;

-- A prepared polygon (PreparedPolygon in sky/spherical_internal.hpp) is the
-- checked polygon followed by, with P = 2 + 2n:
--   [P+1] 1 if convex, [P+2 .. P+4] an outside reference point (non-convex
--   polygons), [P+5] its clearance from the boundary,
--   and for vertex i (0-based) at B = P + 5 + 10 i: [B+1 .. B+3] the unit
--   vector, [B+4 .. B+6] the unit normal of edge i -> i+1 (towards the
--   interior), [B+7 .. B+9] the edge's unit midpoint, [B+10] half its length.

-- A point just right of edge k (outside), closer to it than to any other
-- edge: {x, y, z, clearance}.
CREATE OR REPLACE FUNCTION adql__pp_refpoint(pg float8[], k int) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n int := pg[2];
  b0 int := 7 + 2 * n;
  ba int := b0 + 10 * k;
  bb int := b0 + 10 * ((k + 1) % n);
  bj int;
  bj1 int;
  j int;
  mx float8;
  my float8;
  mz float8;
  len float8;
  clear float8 := 'Infinity'::float8;
  delta float8;
  cs float8;
  sn float8;
BEGIN
  -- Off-centre along the edge, unlikely to line up with anything special.
  mx := pg[ba + 1] + 0.41421356237::float8 * (pg[bb + 1] - pg[ba + 1]);
  my := pg[ba + 2] + 0.41421356237::float8 * (pg[bb + 2] - pg[ba + 2]);
  mz := pg[ba + 3] + 0.41421356237::float8 * (pg[bb + 3] - pg[ba + 3]);
  len := adql__norm(mx, my, mz);
  IF len > 0 THEN
    len := 1::float8 / len;
    mx := len * mx;
    my := len * my;
    mz := len * mz;
  ELSE
    mx := 0;
    my := 0;
    mz := 0;
  END IF;
  FOR j IN 0 .. n - 1 LOOP
    CONTINUE WHEN j = k;
    bj := b0 + 10 * j;
    bj1 := b0 + 10 * ((j + 1) % n);
    delta := adql__arc_dist(mx, my, mz, pg[bj + 1], pg[bj + 2], pg[bj + 3], pg[bj1 + 1], pg[bj1 + 2], pg[bj1 + 3]);
    clear := adql__min(clear, delta);
  END LOOP;
  delta := adql__min(0.5::float8 * clear, 1e-2::float8);
  cs := cos(delta);
  sn := sin(delta);
  mx := cs * mx - sn * pg[ba + 4];
  my := cs * my - sn * pg[ba + 5];
  mz := cs * mz - sn * pg[ba + 6];
  len := adql__norm(mx, my, mz);
  IF len > 0 THEN
    len := 1::float8 / len;
    RETURN ARRAY[len * mx, len * my, len * mz, CASE WHEN delta > 0 THEN delta ELSE 0 END];
  END IF;
  RETURN ARRAY[0, 0, 0, CASE WHEN delta > 0 THEN delta ELSE 0 END];
END
$$;

-- Crossings of the arc p->r with the polygon's edges (count_crossings).
CREATE OR REPLACE FUNCTION adql__pp_crossings(pg float8[], px float8, py float8, pz float8,
                                              rx float8, ry float8, rz float8) RETURNS int
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n int := pg[2];
  b0 int := 7 + 2 * n;
  nx float8 := (ry + py) * (rz - pz) - (rz + pz) * (ry - py);
  ny float8 := (rz + pz) * (rx - px) - (rx + px) * (rz - pz);
  nz float8 := (rx + px) * (ry - py) - (ry + py) * (rx - px);
  j int;
  ba int;
  bb int;
  ax float8;
  ay float8;
  az float8;
  bx float8;
  b_y float8;
  bz float8;
  sa boolean;
  mx float8;
  my float8;
  mz float8;
  mp float8;
  mr float8;
  count int := 0;
BEGIN
  FOR j IN 0 .. n - 1 LOOP
    ba := b0 + 10 * j;
    bb := b0 + 10 * ((j + 1) % n);
    ax := pg[ba + 1];
    ay := pg[ba + 2];
    az := pg[ba + 3];
    bx := pg[bb + 1];
    b_y := pg[bb + 2];
    bz := pg[bb + 3];
    sa := adql__dot(nx, ny, nz, ax, ay, az) > 0;
    CONTINUE WHEN sa = (adql__dot(nx, ny, nz, bx, b_y, bz) > 0);
    mx := (b_y + ay) * (bz - az) - (bz + az) * (b_y - ay);
    my := (bz + az) * (bx - ax) - (bx + ax) * (bz - az);
    mz := (bx + ax) * (b_y - ay) - (b_y + ay) * (bx - ax);
    mp := adql__dot(mx, my, mz, px, py, pz);
    mr := adql__dot(mx, my, mz, rx, ry, rz);
    CONTINUE WHEN NOT ((mp > 0 AND mr < 0) OR (mp < 0 AND mr > 0));
    -- The same intersection point on both arcs, not its antipode.
    IF (mr > 0) = sa THEN
      count := count + 1;
    END IF;
  END LOOP;
  RETURN count;
END
$$;

-- Whether some point of the boundary is within `radius` (radians) of p.
CREATE OR REPLACE FUNCTION adql__pp_boundary_within(pg float8[], px float8, py float8, pz float8, radius float8)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n int := pg[2];
  b0 int := 7 + 2 * n;
  s float8 := CASE WHEN radius >= 1.5707963267948966::float8 THEN 1::float8 ELSE sin(radius) END;
  i int;
  ba int;
  bb int;
  reach float8;
BEGIN
  FOR i IN 0 .. n - 1 LOOP
    ba := b0 + 10 * i;
    -- Farther than `radius` from the edge's great circle or bounding cap.
    CONTINUE WHEN abs(adql__dot(pg[ba + 4], pg[ba + 5], pg[ba + 6], px, py, pz)) > s + 1e-15::float8;
    reach := pg[ba + 10] + 0::float8 + radius;
    CONTINUE WHEN NOT (reach >= 3.141592653589793::float8
                       OR adql__dot(pg[ba + 7], pg[ba + 8], pg[ba + 9], px, py, pz) >= cos(reach) - 1e-15::float8);
    bb := b0 + 10 * ((i + 1) % n);
    IF adql__arc_dist(px, py, pz, pg[ba + 1], pg[ba + 2], pg[ba + 3], pg[bb + 1], pg[bb + 2], pg[bb + 3]) <= radius THEN
      RETURN true;
    END IF;
  END LOOP;
  RETURN false;
END
$$;

-- Containment of a point off the boundary of a non-convex polygon: the
-- parity of the crossings on the way to an outside reference point.
CREATE OR REPLACE FUNCTION adql__pp_parity(pg float8[], px float8, py float8, pz float8) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n int := pg[2];
  h int := 2 + 2 * n;
  rx float8 := pg[h + 2];
  ry float8 := pg[h + 3];
  rz float8 := pg[h + 4];
  clear float8 := pg[h + 5];
  r float8[];
  k int;
  ax float8;
  ay float8;
  az float8;
  qx float8;
  qy float8;
  qz float8;
  len float8;
BEGIN
  FOR k IN -1 .. n - 1 LOOP
    -- First the precomputed reference; when p is far from it, the other
    -- edges' ones.
    IF k >= 0 THEN
      r := adql__pp_refpoint(pg, k);
      rx := r[1];
      ry := r[2];
      rz := r[3];
      clear := r[4];
    END IF;
    CONTINUE WHEN NOT (clear > 0);
    IF adql__angle(px, py, pz, rx, ry, rz) < clear THEN
      RETURN false;
    END IF;
    IF adql__dot(px, py, pz, rx, ry, rz) >= -0.5::float8 THEN
      RETURN adql__pp_crossings(pg, px, py, pz, rx, ry, rz) % 2 = 1;
    END IF;
  END LOOP;
  -- p is nearly opposite every reference point: go through a point at 90
  -- degrees from p.
  IF abs(px) < 0.5::float8 THEN
    ax := 1;
    ay := 0;
  ELSE
    ax := 0;
    ay := 1;
  END IF;
  az := 0;
  qx := py * az - pz * ay;
  qy := pz * ax - px * az;
  qz := px * ay - py * ax;
  len := adql__norm(qx, qy, qz);
  IF len > 0 THEN
    len := 1::float8 / len;
    qx := len * qx;
    qy := len * qy;
    qz := len * qz;
  ELSE
    qx := 0;
    qy := 0;
    qz := 0;
  END IF;
  RETURN (adql__pp_crossings(pg, px, py, pz, qx, qy, qz)
          + adql__pp_crossings(pg, qx, qy, qz, pg[h + 2], pg[h + 3], pg[h + 4])) % 2 = 1;
END
$$;

-- PreparedPolygon::contains: closed (a point on the boundary is inside).
CREATE OR REPLACE FUNCTION adql__pp_contains(pg float8[], px float8, py float8, pz float8) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n int := pg[2];
  b0 int := 7 + 2 * n;
  i int;
BEGIN
  IF n < 3 THEN
    RETURN false;
  END IF;
  IF pg[3 + 2 * n] = 1 THEN
    -- A convex polygon is the intersection of its edges' hemispheres.
    FOR i IN 0 .. n - 1 LOOP
      IF adql__dot(pg[b0 + 10 * i + 4], pg[b0 + 10 * i + 5], pg[b0 + 10 * i + 6], px, py, pz) < -1e-14::float8 THEN
        RETURN false;
      END IF;
    END LOOP;
    RETURN true;
  END IF;
  IF adql__pp_boundary_within(pg, px, py, pz, 1e-14::float8) THEN
    RETURN true;
  END IF;
  RETURN adql__pp_parity(pg, px, py, pz);
END
$$;

-- The prepared form of a checked polygon {3, n, ra1, dec1, ...}.
CREATE OR REPLACE FUNCTION adql__pp_make(g float8[]) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n int := g[2];
  vx float8[];
  vy float8[];
  vz float8[];
  i int;
  j int;
  k int;
  cd float8;
  wx float8;
  wy float8;
  wz float8;
  len float8;
  nx float8;
  ny float8;
  nz float8;
  mx float8;
  my float8;
  mz float8;
  convex boolean;
  body float8[] := '{}';
  pg float8[];
  r float8[];
  best float8[] := '{0,0,0,0}';
  h int := 2 + 2 * n;
BEGIN
  FOR i IN 1 .. n LOOP
    cd := adql__cosd(g[2 + 2 * i]);
    vx[i] := cd * adql__cosd(g[1 + 2 * i]);
    vy[i] := cd * adql__sind(g[1 + 2 * i]);
    vz[i] := adql__sind(g[2 + 2 * i]);
  END LOOP;
  FOR i IN 1 .. n LOOP
    j := i % n + 1;
    wx := (vy[j] + vy[i]) * (vz[j] - vz[i]) - (vz[j] + vz[i]) * (vy[j] - vy[i]);
    wy := (vz[j] + vz[i]) * (vx[j] - vx[i]) - (vx[j] + vx[i]) * (vz[j] - vz[i]);
    wz := (vx[j] + vx[i]) * (vy[j] - vy[i]) - (vy[j] + vy[i]) * (vx[j] - vx[i]);
    len := adql__norm(wx, wy, wz);
    IF len > 0 THEN
      len := 1::float8 / len;
      nx := len * wx;
      ny := len * wy;
      nz := len * wz;
    ELSE
      nx := 0;
      ny := 0;
      nz := 0;
    END IF;
    wx := vx[i] + vx[j];
    wy := vy[i] + vy[j];
    wz := vz[i] + vz[j];
    len := adql__norm(wx, wy, wz);
    IF len > 0 THEN
      len := 1::float8 / len;
      mx := len * wx;
      my := len * wy;
      mz := len * wz;
    ELSE
      mx := 0;
      my := 0;
      mz := 0;
    END IF;
    body := body || ARRAY[vx[i], vy[i], vz[i], nx, ny, nz, mx, my, mz,
                          0.5::float8 * adql__angle(vx[i], vy[i], vz[i], vx[j], vy[j], vz[j])];
  END LOOP;
  convex := n >= 3;
  i := 0;
  WHILE i < n AND convex LOOP
    -- The turn at vertex i+1, measured on the chord to the next vertex.
    j := (i + 1) % n + 1;
    k := (i + 2) % n + 1;
    wx := vx[k] - vx[j];
    wy := vy[k] - vy[j];
    wz := vz[k] - vz[j];
    convex := adql__dot(body[10 * i + 4], body[10 * i + 5], body[10 * i + 6], wx, wy, wz)
              >= -1e-12::float8 * adql__norm(wx, wy, wz);
    i := i + 1;
  END LOOP;
  pg := g[1:h] || ARRAY[CASE WHEN convex THEN 1 ELSE 0 END, 0, 0, 0, 0]::float8[] || body;
  IF NOT convex THEN
    -- A reference point well clear of the boundary relative to its edge,
    -- the search bounded since each candidate costs O(n).
    FOR k IN 0 .. least(n, 8) - 1 LOOP
      r := adql__pp_refpoint(pg, k);
      IF r[4] > best[4] THEN
        best := r;
      END IF;
      EXIT WHEN r[4] >= 2e-3::float8 * body[10 * k + 10];
    END LOOP;
    pg[h + 2] := best[1];
    pg[h + 3] := best[2];
    pg[h + 4] := best[3];
    pg[h + 5] := best[4];
  END IF;
  RETURN pg;
END
$$;

-- ------------------------------------------------------------------- ranges

-- A prepared RA/Dec range (PreparedRange): {empty, full_ra, ra_lo, ra_hi,
-- dec_min, dec_max}, RA normalised, wrapping through 0 when ra_lo > ra_hi.
CREATE OR REPLACE FUNCTION adql__range(ra_min float8, ra_max float8, dec_min float8, dec_max float8)
RETURNS float8[] LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF NOT (adql__finite(ra_min) AND adql__finite(ra_max) AND adql__finite(dec_min) AND adql__finite(dec_max))
     OR dec_min > dec_max OR dec_max < -90 OR dec_min > 90 THEN
    RETURN '{1,0,0,360,-90,90}'::float8[];
  END IF;
  IF ra_max - ra_min >= 360 THEN
    RETURN ARRAY[0, 1, 0, 360, adql__max(dec_min, -90), adql__min(dec_max, 90)];
  END IF;
  RETURN ARRAY[0, 0, adql__nra(ra_min), adql__nra(ra_max), adql__max(dec_min, -90), adql__min(dec_max, 90)];
END
$$;

CREATE OR REPLACE FUNCTION adql__rg_ra_in(rg float8[], ra float8, slack float8) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  off float8;
BEGIN
  IF rg[2] = 1 THEN
    RETURN true;
  END IF;
  -- Offsets counter-clockwise from ra_lo handle the wrap uniformly.
  off := adql__nra(ra - rg[3]);
  RETURN off <= adql__nra(rg[4] - rg[3]) + slack OR off >= 360 - slack;
END
$$;

-- RaDecRange::contains for a sky point.
CREATE OR REPLACE FUNCTION adql__rg_contains_pt(rg float8[], ra float8, decl float8) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF rg[1] = 1 OR NOT (adql__finite(ra) AND adql__finite(decl)) THEN
    RETURN false;
  END IF;
  IF decl < rg[5] OR decl > rg[6] THEN
    RETURN false;
  END IF;
  IF abs(decl) >= 90 THEN
    RETURN true;  -- a pole: its RA is arbitrary
  END IF;
  RETURN adql__rg_ra_in(rg, ra, 0);
END
$$;

-- PreparedRange::contains for a vector.
CREATE OR REPLACE FUNCTION adql__rg_contains_vec(rg float8[], x float8, y float8, z float8) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  s float8[];
BEGIN
  IF rg[1] = 1 THEN
    RETURN false;
  END IF;
  s := adql__to_sky(x, y, z);
  IF s[2] < rg[5] OR s[2] > rg[6] THEN
    RETURN false;
  END IF;
  IF abs(s[2]) >= 90 THEN
    RETURN true;
  END IF;
  RETURN adql__rg_ra_in(rg, s[1], 0);
END
$$;

-- Distance (radians) from p to the meridian arc at `ra` from d1 to d2:
-- at an end or at the foot of the perpendicular from p.
CREATE OR REPLACE FUNCTION adql__meridian_dist(px float8, py float8, pz float8, ps float8[], ra float8,
                                               d1 float8, d2 float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  s float8 := adql__sind(ra);
  c float8 := adql__cosd(ra);
  e1 float8 := adql__dist_rad(ps[1], ps[2], ra, d1);
  e2 float8 := adql__dist_rad(ps[1], ps[2], ra, d2);
  best float8 := adql__min(e1, e2);
  a float8 := adql__dot(px, py, pz, c, s, 0);
  foot float8 := atan2(pz, a) * 57.29577951308232::float8;
BEGIN
  IF foot >= d1 AND foot <= d2 THEN
    e1 := atan2(abs(adql__dot(px, py, pz, -s, c, 0)), adql__hypot(a, pz));
    best := adql__min(best, e1);
  END IF;
  RETURN best;
END
$$;

-- Shortest distance (radians) from p to the range's boundary.
CREATE OR REPLACE FUNCTION adql__rg_boundary_dist(rg float8[], px float8, py float8, pz float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  d float8 := 'Infinity'::float8;
  e1 float8;
  e2 float8;
  s float8[];
  inside boolean;
  decl float8;
  k int;
BEGIN
  IF rg[1] = 1 THEN
    RETURN d;
  END IF;
  s := adql__to_sky(px, py, pz);
  IF rg[2] = 0 THEN
    e1 := adql__meridian_dist(px, py, pz, s, rg[3], rg[5], rg[6]);
    d := adql__min(d, e1);
    e1 := adql__meridian_dist(px, py, pz, s, rg[4], rg[5], rg[6]);
    d := adql__min(d, e1);
  END IF;
  -- Along a parallel the distance grows with the RA difference: the
  -- nearest point has p's RA when that is inside the interval, else an end.
  inside := rg[2] = 1 OR adql__rg_ra_in(rg, s[1], 0);
  FOR k IN 5 .. 6 LOOP
    decl := rg[k];
    CONTINUE WHEN (k = 5 AND NOT decl > -90) OR (k = 6 AND NOT decl < 90);
    IF inside THEN
      d := adql__min(d, abs(s[2] - decl) * 0.017453292519943295::float8);
    ELSE
      e1 := adql__dist_rad(s[1], s[2], rg[3], decl);
      e2 := adql__dist_rad(s[1], s[2], rg[4], decl);
      e1 := adql__min(e1, e2);
      d := adql__min(d, e1);
    END IF;
  END LOOP;
  RETURN d;
END
$$;

-- Whether the arc a->b has a point in the range: cut where it crosses the
-- range's boundary meridians and at its latitude extremes, each piece is
-- wholly in or out in RA and monotonic in latitude.
CREATE OR REPLACE FUNCTION adql__arc_meets_range(ax float8, ay float8, az float8, bx float8, b_y float8, bz float8,
                                                 rg float8[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  nx float8 := (b_y + ay) * (bz - az) - (bz + az) * (b_y - ay);
  ny float8 := (bz + az) * (bx - ax) - (bx + ax) * (bz - az);
  nz float8 := (bx + ax) * (b_y - ay) - (b_y + ay) * (bx - ax);
  len float8 := adql__norm(nx, ny, nz);
  theta float8;
  ux float8;
  uy float8;
  uz float8;
  cuts float8[];
  roots float8[];
  t float8;
  t0 float8;
  t1 float8;
  cs float8;
  sn float8;
  xx float8;
  xy float8;
  xz float8;
  sr float8;
  cr float8;
  ra float8;
  hit boolean;
  d0 float8;
  d1 float8;
  mid float8[];
  i int;
  j int;
  k int;
BEGIN
  IF len > 0 THEN
    len := 1::float8 / len;
    nx := len * nx;
    ny := len * ny;
    nz := len * nz;
  ELSE
    nx := 0;
    ny := 0;
    nz := 0;
  END IF;
  IF adql__norm(nx, ny, nz) = 0 THEN
    RETURN adql__rg_contains_vec(rg, ax, ay, az);
  END IF;
  theta := adql__angle(ax, ay, az, bx, b_y, bz);
  ux := ny * az - nz * ay;  -- unit tangent at a, towards b
  uy := nz * ax - nx * az;
  uz := nx * ay - ny * ax;
  cuts := ARRAY[0, theta];
  IF rg[2] = 0 THEN
    FOR k IN 3 .. 4 LOOP
      ra := rg[k];
      sr := adql__sind(ra);
      cr := adql__cosd(ra);
      -- The arc's plane meets the meridian's at t0 and t0 + pi.
      t0 := atan2(-adql__dot(-sr, cr, 0, ax, ay, az), adql__dot(-sr, cr, 0, ux, uy, uz));
      hit := false;
      roots := ARRAY[t0 - 6.283185307179586::float8, t0 - 3.141592653589793::float8, t0,
                     t0 + 3.141592653589793::float8, t0 + 6.283185307179586::float8];
      FOREACH t IN ARRAY roots LOOP
        CONTINUE WHEN NOT (t >= 0 AND t <= theta);
        cs := cos(t);
        sn := sin(t);
        xx := cs * ax + sn * ux;
        xy := cs * ay + sn * uy;
        xz := cs * az + sn * uz;
        CONTINUE WHEN adql__dot(cr, sr, 0, xx, xy, xz) < 0;  -- the other half of that great circle
        IF NOT hit THEN
          d0 := atan2(xz, adql__hypot(xx, xy)) * 57.29577951308232::float8;
          hit := d0 >= rg[5] - 1e-12::float8 AND d0 <= rg[6] + 1e-12::float8;
        END IF;
        cuts := cuts || t;
      END LOOP;
      IF hit THEN
        RETURN true;  -- on the boundary meridian itself
      END IF;
    END LOOP;
  END IF;
  t0 := atan2(uz, az);  -- z(t) is extreme at t0 and t0 + pi
  roots := ARRAY[t0 - 6.283185307179586::float8, t0 - 3.141592653589793::float8, t0,
                 t0 + 3.141592653589793::float8, t0 + 6.283185307179586::float8];
  FOREACH t IN ARRAY roots LOOP
    IF t >= 0 AND t <= theta THEN
      cuts := cuts || t;
    END IF;
  END LOOP;
  -- Insertion sort: a handful of values.
  FOR i IN 2 .. array_length(cuts, 1) LOOP
    t := cuts[i];
    j := i - 1;
    WHILE j >= 1 AND cuts[j] > t LOOP
      cuts[j + 1] := cuts[j];
      j := j - 1;
    END LOOP;
    cuts[j + 1] := t;
  END LOOP;
  FOR i IN 1 .. array_length(cuts, 1) - 1 LOOP
    t0 := cuts[i];
    t1 := cuts[i + 1];
    CONTINUE WHEN NOT (t1 > t0);
    t := 0.5::float8 * (t0 + t1);
    cs := cos(t);
    sn := sin(t);
    mid := adql__to_sky(cs * ax + sn * ux, cs * ay + sn * uy, cs * az + sn * uz);
    CONTINUE WHEN NOT adql__rg_ra_in(rg, mid[1], 1e-12::float8) AND abs(mid[2]) < 90;
    cs := cos(t0);
    sn := sin(t0);
    xx := cs * ax + sn * ux;
    xy := cs * ay + sn * uy;
    xz := cs * az + sn * uz;
    d0 := atan2(xz, adql__hypot(xx, xy)) * 57.29577951308232::float8;
    cs := cos(t1);
    sn := sin(t1);
    xx := cs * ax + sn * ux;
    xy := cs * ay + sn * uy;
    xz := cs * az + sn * uz;
    d1 := atan2(xz, adql__hypot(xx, xy)) * 57.29577951308232::float8;
    IF adql__max(d0, d1) >= rg[5] - 1e-12::float8 AND adql__min(d0, d1) <= rg[6] + 1e-12::float8 THEN
      RETURN true;
    END IF;
  END LOOP;
  RETURN false;
END
$$;

-- ------------------------------------------------------- shape intersections

-- sky::intersects(Polygon, RaDecRange).
CREATE OR REPLACE FUNCTION adql__pp_meets_range(pg float8[], rg float8[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n int := pg[2];
  b0 int := 7 + 2 * n;
  i int;
  ba int;
  bb int;
  cd float8;
BEGIN
  IF rg[1] = 1 THEN
    RETURN false;
  END IF;
  IF rg[2] = 1 AND rg[5] <= -90 AND rg[6] >= 90 THEN
    RETURN true;
  END IF;
  FOR i IN 0 .. n - 1 LOOP
    IF adql__rg_contains_pt(rg, pg[3 + 2 * i], pg[4 + 2 * i]) THEN
      RETURN true;
    END IF;
  END LOOP;
  -- With no edge meeting the (connected) range, it is wholly inside the
  -- polygon or wholly outside: one of its points decides.
  cd := adql__cosd(rg[5]);
  IF adql__pp_contains(pg, cd * adql__cosd(rg[3]), cd * adql__sind(rg[3]), adql__sind(rg[5])) THEN
    RETURN true;
  END IF;
  FOR i IN 0 .. n - 1 LOOP
    ba := b0 + 10 * i;
    bb := b0 + 10 * ((i + 1) % n);
    IF adql__arc_meets_range(pg[ba + 1], pg[ba + 2], pg[ba + 3], pg[bb + 1], pg[bb + 2], pg[bb + 3], rg) THEN
      RETURN true;
    END IF;
  END LOOP;
  RETURN false;
END
$$;

-- sky::intersects(Polygon, Polygon): a vertex of one in the other, or two
-- crossing edges.
CREATE OR REPLACE FUNCTION adql__pp_meets_pp(pa float8[], pb float8[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  na int := pa[2];
  nb int := pb[2];
  a0 int := 7 + 2 * na;
  b0 int := 7 + 2 * nb;
  i int;
  j int;
  ba int;
  ba1 int;
  bb int;
  bb1 int;
BEGIN
  FOR i IN 0 .. na - 1 LOOP
    ba := a0 + 10 * i;
    IF adql__pp_contains(pb, pa[ba + 1], pa[ba + 2], pa[ba + 3]) THEN
      RETURN true;
    END IF;
  END LOOP;
  FOR j IN 0 .. nb - 1 LOOP
    bb := b0 + 10 * j;
    IF adql__pp_contains(pa, pb[bb + 1], pb[bb + 2], pb[bb + 3]) THEN
      RETURN true;
    END IF;
  END LOOP;
  FOR i IN 0 .. na - 1 LOOP
    ba := a0 + 10 * i;
    ba1 := a0 + 10 * ((i + 1) % na);
    FOR j IN 0 .. nb - 1 LOOP
      bb := b0 + 10 * j;
      bb1 := b0 + 10 * ((j + 1) % nb);
      IF adql__cross_exact(pa[ba + 1], pa[ba + 2], pa[ba + 3], pa[ba1 + 1], pa[ba1 + 2], pa[ba1 + 3],
                           pb[bb + 1], pb[bb + 2], pb[bb + 3], pb[bb1 + 1], pb[bb1 + 2], pb[bb1 + 3]) THEN
        RETURN true;
      END IF;
    END LOOP;
  END LOOP;
  RETURN false;
END
$$;

-- ------------------------------------------------------- parsed geometries
--
-- adql__parse gives {1, ra, dec} (point), {2, ra, dec, radius} (circle),
-- {4, ra, dec, width, height} (box) or the checked polygon {3, n, ...}.
-- adql__prep adds what the predicates need: the unit vector of a point or
-- a circle's centre ({1, ra, dec, x, y, z}, {2, ra, dec, radius, x, y, z}),
-- a box's prepared range ({4, ra, dec, width, height} || range) and a
-- polygon's prepared form.

CREATE OR REPLACE FUNCTION adql__parse(t text) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  tokens text[] := array_remove(regexp_split_to_array(t, '[ \t\n\v\f\r]+'), '');
  nt int := coalesce(array_length(tokens, 1), 0);
  shape text;
  tok text;
  k int := 2;
  nums float8[] := '{}';
  v float8;
  bad boolean;
  need int;
  g float8[];
BEGIN
  IF nt = 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'empty geometry';
  END IF;
  shape := upper(tokens[1] COLLATE "C");
  WHILE k <= nt LOOP
    tok := tokens[k];
    EXIT WHEN tok ~ '^[0-9.+-]';
    IF upper(tok COLLATE "C") NOT IN ('ICRS', 'UNKNOWNFRAME', 'GEOCENTER', 'BARYCENTER', 'TOPOCENTER',
                                      'HELIOCENTER', 'UNKNOWNREFPOS', 'SPHERICAL2') THEN
      RAISE EXCEPTION USING ERRCODE = '22023',
        MESSAGE = format('unsupported coordinate frame or flag ''%s'' (only ICRS is served)', tok);
    END IF;
    k := k + 1;
  END LOOP;
  -- Numbers as std::from_chars reads them: no '+', no hex; inf and nan
  -- (which the coordinate check refuses) once the numbers have begun. The
  -- usual text, plain numbers far from the limits of a double, converts in
  -- one step.
  IF array_to_string(tokens[k:nt], ' ')
     ~ '^(-?([0-9]{1,40}(\.[0-9]{0,40})?|\.[0-9]{1,40})([eE][-+]?[0-9]{1,2})?( |$))*$' THEN
    nums := tokens[k:nt]::float8[];
    k := nt + 1;
  END IF;
  WHILE k <= nt LOOP
    tok := tokens[k];
    bad := false;
    IF tok ~ '^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$' THEN
      IF length(tok) > 200 OR tok ~ '[eE][-+]?0*[1-9][0-9]{2}' THEN
        -- Possibly beyond the range of a double: from_chars refuses those.
        BEGIN
          v := tok::float8;
        EXCEPTION WHEN numeric_value_out_of_range OR invalid_text_representation THEN
          bad := true;
        END;
      ELSE
        v := tok::float8;
      END IF;
    ELSIF tok ~* '^-?(inf|infinity)$' THEN
      v := CASE WHEN left(tok, 1) = '-' THEN '-Infinity'::float8 ELSE 'Infinity'::float8 END;
    ELSIF tok ~* '^-?nan(\([0-9a-z_]*\))?$' THEN
      v := 'NaN'::float8;
    ELSE
      bad := true;
    END IF;
    IF bad THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('invalid number ''%s'' in geometry', tok);
    END IF;
    nums := nums || v;
    k := k + 1;
  END LOOP;
  IF shape = 'POLYGON' THEN
    g := adql__polygon_core(nums);
    IF g[1] < 0 THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = adql__error_text(g);
    END IF;
    RETURN g;
  END IF;
  need := CASE shape WHEN 'POINT' THEN 2 WHEN 'POSITION' THEN 2 WHEN 'CIRCLE' THEN 3 WHEN 'BOX' THEN 4 END;
  IF need IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unsupported geometry ''%s''', tokens[1]);
  END IF;
  IF coalesce(array_length(nums, 1), 0) <> need THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = format('%s needs %s numbers, got %s', shape, need, coalesce(array_length(nums, 1), 0));
  END IF;
  FOR k IN 1 .. need LOOP
    IF NOT adql__finite(nums[k]) THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'geometry coordinates must be finite numbers';
    END IF;
  END LOOP;
  IF nums[2] < -90 OR nums[2] > 90 THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = 'declination ' || adql__fmt(nums[2]) || ' is outside [-90, 90]';
  END IF;
  IF need = 2 THEN
    RETURN ARRAY[1, adql__nra(nums[1]), nums[2]];
  END IF;
  IF need = 3 THEN
    IF nums[3] < 0 OR nums[3] > 180 THEN
      RAISE EXCEPTION USING ERRCODE = '22023',
        MESSAGE = 'circle radius ' || adql__fmt(nums[3]) || ' is outside [0, 180]';
    END IF;
    RETURN ARRAY[2, adql__nra(nums[1]), nums[2], nums[3]];
  END IF;
  IF nums[3] < 0 OR nums[4] < 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'box width and height must not be negative';
  END IF;
  RETURN ARRAY[4, adql__nra(nums[1]), nums[2], nums[3], nums[4]];
END
$$;

-- Box::range() of a parsed box, prepared.
CREATE OR REPLACE FUNCTION adql__box_range(g float8[]) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  ra_min float8;
  ra_max float8;
BEGIN
  IF g[4] >= 360 THEN
    ra_min := 0;
    ra_max := 360;
  ELSE
    ra_min := adql__nra(g[2] - g[4] / 2);
    ra_max := adql__nra(g[2] + g[4] / 2);
    IF g[4] = 0 THEN
      ra_max := ra_min;
    END IF;
  END IF;
  RETURN adql__range(ra_min, ra_max, adql__max(-90, g[3] - g[5] / 2), adql__min(90, g[3] + g[5] / 2));
END
$$;

CREATE OR REPLACE FUNCTION adql__prep(g float8[]) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  kind int := g[1];
  cd float8;
BEGIN
  IF kind = 1 OR kind = 2 THEN
    cd := adql__cosd(g[3]);
    RETURN g || ARRAY[cd * adql__cosd(g[2]), cd * adql__sind(g[2]), adql__sind(g[3])];
  END IF;
  IF kind = 4 THEN
    RETURN g || adql__box_range(g);
  END IF;
  RETURN adql__pp_make(g);
END
$$;

-- ------------------------------------------------------------- the predicates
-- On prepared geometries: a point is {1, ra, dec, x, y, z}, a circle
-- {2, ra, dec, r, x, y, z}, a box {4, ra, dec, w, h, range[6]}.

CREATE OR REPLACE FUNCTION adql__point_in(p float8[], o float8[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  kind int := o[1];
BEGIN
  IF kind = 1 THEN
    RETURN adql__dist_deg(p[2], p[3], o[2], o[3]) <= 1e-10::float8;
  ELSIF kind = 2 THEN
    RETURN adql__dist_deg(o[2], o[3], p[2], p[3]) <= o[4];
  ELSIF kind = 3 THEN
    RETURN adql__pp_contains(o, p[4], p[5], p[6]);
  END IF;
  RETURN adql__rg_contains_pt(o[6:11], p[2], p[3]);
END
$$;

-- The distance (radians) from p to the range, 0 inside.
CREATE OR REPLACE FUNCTION adql__rg_dist(rg float8[], px float8, py float8, pz float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN adql__rg_contains_vec(rg, px, py, pz) THEN 0::float8
              ELSE adql__rg_boundary_dist(rg, px, py, pz) END
$$;

CREATE OR REPLACE FUNCTION adql__full_sky(rg float8[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT rg[2] = 1 AND rg[5] <= -90 AND rg[6] >= 90 $$;

CREATE OR REPLACE FUNCTION adql__ra_width(rg float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN rg[2] = 1 THEN 360::float8 ELSE adql__nra(rg[4] - rg[3]) END
$$;

CREATE OR REPLACE FUNCTION adql__circle_in(c float8[], o float8[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  kind int := o[1];
  r float8 := c[4] * 0.017453292519943295::float8;
  rg float8[];
BEGIN
  IF kind = 1 THEN
    RETURN c[4] <= 1e-10::float8 AND adql__dist_deg(c[2], c[3], o[2], o[3]) <= 1e-10::float8;
  ELSIF kind = 2 THEN
    RETURN o[4] >= 180 OR adql__dist_deg(c[2], c[3], o[2], o[3]) + c[4] <= o[4] + 1e-10::float8;
  ELSIF kind = 3 THEN
    IF c[4] >= 180 THEN
      RETURN false;
    END IF;
    RETURN adql__pp_contains(o, c[5], c[6], c[7])
       AND NOT adql__pp_boundary_within(o, c[5], c[6], c[7], r - 1.7453292519943296e-12::float8);
  END IF;
  rg := o[6:11];
  IF adql__full_sky(rg) THEN
    RETURN true;
  END IF;
  RETURN adql__rg_contains_vec(rg, c[5], c[6], c[7])
     AND adql__rg_boundary_dist(rg, c[5], c[6], c[7]) >= r - 1.7453292519943296e-12::float8;
END
$$;

CREATE OR REPLACE FUNCTION adql__polygon_in(p float8[], o float8[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  kind int := o[1];
  n int := p[2];
  b0 int := 7 + 2 * n;
  i int;
  j int;
  ba int;
  ba1 int;
  bb int;
  bb1 int;
  rg float8[];
BEGIN
  IF kind = 1 THEN
    RETURN false;
  ELSIF kind = 2 THEN
    IF o[4] >= 180 THEN
      RETURN true;
    END IF;
    FOR i IN 0 .. n - 1 LOOP
      ba := b0 + 10 * i;
      ba1 := b0 + 10 * ((i + 1) % n);
      IF adql__arc_max_dist(o[5], o[6], o[7], p[ba + 1], p[ba + 2], p[ba + 3], p[ba1 + 1], p[ba1 + 2], p[ba1 + 3])
         > o[4] * 0.017453292519943295::float8 + 1.7453292519943296e-12::float8 THEN
        RETURN false;
      END IF;
    END LOOP;
    -- The boundary is inside the cap: the polygon is the part inside unless
    -- it is the other side, which holds the antipode.
    RETURN NOT adql__pp_contains(p, -1::float8 * o[5], -1::float8 * o[6], -1::float8 * o[7]);
  ELSIF kind = 3 THEN
    FOR i IN 0 .. n - 1 LOOP
      ba := b0 + 10 * i;
      IF NOT adql__pp_contains(o, p[ba + 1], p[ba + 2], p[ba + 3]) THEN
        RETURN false;
      END IF;
    END LOOP;
    FOR j IN 0 .. o[2]::int - 1 LOOP
      bb := 7 + 2 * o[2]::int + 10 * j;
      IF adql__pp_contains(p, o[bb + 1], o[bb + 2], o[bb + 3])
         AND NOT adql__pp_boundary_within(p, o[bb + 1], o[bb + 2], o[bb + 3], 1.7453292519943296e-12::float8) THEN
        RETURN false;
      END IF;
    END LOOP;
    FOR i IN 0 .. n - 1 LOOP
      ba := b0 + 10 * i;
      ba1 := b0 + 10 * ((i + 1) % n);
      FOR j IN 0 .. o[2]::int - 1 LOOP
        bb := 7 + 2 * o[2]::int + 10 * j;
        bb1 := 7 + 2 * o[2]::int + 10 * ((j + 1) % o[2]::int);
        IF adql__cross_tol(p[ba + 1], p[ba + 2], p[ba + 3], p[ba1 + 1], p[ba1 + 2], p[ba1 + 3],
                           o[bb + 1], o[bb + 2], o[bb + 3], o[bb1 + 1], o[bb1 + 2], o[bb1 + 3]) THEN
          RETURN false;
        END IF;
      END LOOP;
    END LOOP;
    RETURN true;
  END IF;
  -- Inside the box's range iff the polygon meets none of the (slightly
  -- shrunk) pieces of its complement: the caps beyond its declination
  -- limits and the lune of RA outside it.
  rg := o[6:11];
  IF adql__full_sky(rg) THEN
    RETURN true;
  END IF;
  IF rg[5] > -90 AND rg[5] - 1e-10::float8 >= -90
     AND adql__pp_meets_range(p, adql__range(0, 360, -90, rg[5] - 1e-10::float8)) THEN
    RETURN false;
  END IF;
  IF rg[6] < 90 AND rg[6] + 1e-10::float8 <= 90
     AND adql__pp_meets_range(p, adql__range(0, 360, rg[6] + 1e-10::float8, 90)) THEN
    RETURN false;
  END IF;
  IF rg[2] = 0 AND adql__pp_meets_range(p, adql__range(rg[4] + 1e-10::float8, rg[3] - 1e-10::float8, -90, 90)) THEN
    RETURN false;
  END IF;
  RETURN true;
END
$$;

-- A box inside a polygon: the box's corners, its edges sampled every
-- <= 0.01 deg and the polygon's crossings of its meridian edges, as the
-- C++ does.
CREATE OR REPLACE FUNCTION adql__box_in_polygon(rg float8[], p float8[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n int := p[2];
  b0 int := 7 + 2 * n;
  i int;
  k int;
  ba int;
  ba1 int;
  width float8 := adql__ra_width(rg);
  ra0 float8 := CASE WHEN rg[2] = 1 THEN 0 ELSE rg[3] END;
  n_ra int;
  n_dec int;
  ra float8;
  decl float8;
  cd float8;
  cr float8;
  sr float8;
  m0x float8;
  m0y float8;
  m0z float8;
  m1x float8;
  m1y float8;
  m1z float8;
BEGIN
  FOR i IN 0 .. n - 1 LOOP
    ba := b0 + 10 * i;
    IF adql__rg_contains_vec(rg, p[ba + 1], p[ba + 2], p[ba + 3])
       AND adql__rg_boundary_dist(rg, p[ba + 1], p[ba + 2], p[ba + 3]) > 1.7453292519943296e-12::float8 THEN
      RETURN false;  -- a vertex strictly inside
    END IF;
  END LOOP;
  n_ra := greatest(4, ceil(width / 0.01::float8)::int);
  n_dec := greatest(4, ceil((rg[6] - rg[5]) / 0.01::float8)::int);
  FOR i IN 0 .. n_ra LOOP
    ra := adql__nra(ra0 + width * i / n_ra);
    cr := adql__cosd(ra);
    sr := adql__sind(ra);
    FOR k IN 5 .. 6 LOOP
      cd := adql__cosd(rg[k]);
      IF NOT adql__pp_contains(p, cd * cr, cd * sr, adql__sind(rg[k])) THEN
        RETURN false;
      END IF;
    END LOOP;
  END LOOP;
  IF rg[2] = 0 THEN
    FOR k IN 3 .. 4 LOOP
      ra := rg[k];
      cr := adql__cosd(ra);
      sr := adql__sind(ra);
      FOR i IN 0 .. n_dec LOOP
        decl := rg[5] + (rg[6] - rg[5]) * i / n_dec;
        cd := adql__cosd(decl);
        IF NOT adql__pp_contains(p, cd * cr, cd * sr, adql__sind(decl)) THEN
          RETURN false;
        END IF;
      END LOOP;
      cd := adql__cosd(rg[5]);
      m0x := cd * cr;
      m0y := cd * sr;
      m0z := adql__sind(rg[5]);
      cd := adql__cosd(rg[6]);
      m1x := cd * cr;
      m1y := cd * sr;
      m1z := adql__sind(rg[6]);
      FOR i IN 0 .. n - 1 LOOP
        ba := b0 + 10 * i;
        ba1 := b0 + 10 * ((i + 1) % n);
        IF adql__cross_tol(m0x, m0y, m0z, m1x, m1y, m1z,
                           p[ba + 1], p[ba + 2], p[ba + 3], p[ba1 + 1], p[ba1 + 2], p[ba1 + 3]) THEN
          RETURN false;
        END IF;
      END LOOP;
    END LOOP;
  END IF;
  RETURN true;
END
$$;

CREATE OR REPLACE FUNCTION adql__box_in(b float8[], o float8[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  kind int := o[1];
  rg float8[] := b[6:11];
  q float8[];
  off float8;
BEGIN
  IF kind = 1 THEN
    RETURN b[4] <= 1e-10::float8 AND b[5] <= 1e-10::float8 AND adql__dist_deg(b[2], b[3], o[2], o[3]) <= 1e-10::float8;
  ELSIF kind = 2 THEN
    IF o[4] >= 180 THEN
      RETURN true;
    END IF;
    -- The farthest point of the range from the centre is the antipode's
    -- nearest point.
    RETURN 3.141592653589793::float8 - adql__rg_dist(rg, -1::float8 * o[5], -1::float8 * o[6], -1::float8 * o[7])
           <= o[4] * 0.017453292519943295::float8 + 1.7453292519943296e-12::float8;
  ELSIF kind = 3 THEN
    RETURN adql__box_in_polygon(rg, o);
  END IF;
  q := o[6:11];
  IF rg[5] < q[5] - 1e-10::float8 OR rg[6] > q[6] + 1e-10::float8 THEN
    RETURN false;
  END IF;
  IF q[2] = 1 THEN
    RETURN true;
  END IF;
  IF rg[2] = 1 THEN
    RETURN false;
  END IF;
  off := adql__nra(rg[3] - q[3]);
  IF off > 359.9999999999::float8 THEN
    off := 0;
  END IF;
  RETURN off + adql__ra_width(rg) <= adql__ra_width(q) + 1e-10::float8;
END
$$;

CREATE OR REPLACE FUNCTION adql__contains_g(a float8[], b float8[]) RETURNS int
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  kind int := a[1];
BEGIN
  IF kind = 1 THEN
    RETURN adql__point_in(a, b)::int;
  ELSIF kind = 2 THEN
    RETURN adql__circle_in(a, b)::int;
  ELSIF kind = 3 THEN
    RETURN adql__polygon_in(a, b)::int;
  END IF;
  RETURN adql__box_in(a, b)::int;
END
$$;

CREATE OR REPLACE FUNCTION adql__circle_meets(c float8[], o float8[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  kind int := o[1];
  rg float8[];
BEGIN
  IF kind = 1 THEN
    RETURN adql__dist_deg(c[2], c[3], o[2], o[3]) <= c[4];
  ELSIF kind = 2 THEN
    RETURN adql__dist_deg(c[2], c[3], o[2], o[3]) <= c[4] + o[4] + 1e-10::float8;
  ELSIF kind = 3 THEN
    IF c[4] >= 180 THEN
      RETURN true;
    END IF;
    IF adql__pp_contains(o, c[5], c[6], c[7]) THEN
      RETURN true;
    END IF;
    RETURN adql__pp_boundary_within(o, c[5], c[6], c[7], c[4] * 0.017453292519943295::float8 + 1e-14::float8);
  END IF;
  rg := o[6:11];
  IF rg[1] = 1 THEN
    RETURN false;
  END IF;
  RETURN adql__rg_dist(rg, c[5], c[6], c[7])
         <= c[4] * 0.017453292519943295::float8 + 1.7453292519943296e-12::float8;
END
$$;

-- Two ranges meet (boxes).
CREATE OR REPLACE FUNCTION adql__ranges_meet(p float8[], q float8[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF p[1] = 1 OR q[1] = 1 THEN
    RETURN false;
  END IF;
  IF p[6] < q[5] - 1e-10::float8 OR q[6] < p[5] - 1e-10::float8 THEN
    RETURN false;
  END IF;
  -- Ranges touching a pole meet there whatever their RA.
  IF (p[6] >= 90 AND q[6] >= 90) OR (p[5] <= -90 AND q[5] <= -90) THEN
    RETURN true;
  END IF;
  RETURN adql__rg_ra_in(p, q[3], 1e-10::float8) OR adql__rg_ra_in(q, p[3], 1e-10::float8);
END
$$;

CREATE OR REPLACE FUNCTION adql__intersects_g(a float8[], b float8[]) RETURNS int
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  ka int := a[1];
  kb int := b[1];
BEGIN
  IF ka = 1 THEN
    RETURN adql__point_in(a, b)::int;
  ELSIF kb = 1 THEN
    RETURN adql__point_in(b, a)::int;
  ELSIF ka = 2 THEN
    RETURN adql__circle_meets(a, b)::int;
  ELSIF kb = 2 THEN
    RETURN adql__circle_meets(b, a)::int;
  ELSIF ka = 3 THEN
    IF kb = 3 THEN
      RETURN adql__pp_meets_pp(a, b)::int;
    END IF;
    RETURN adql__pp_meets_range(a, b[6:11])::int;
  ELSIF kb = 3 THEN
    RETURN adql__pp_meets_range(b, a[6:11])::int;
  END IF;
  RETURN adql__ranges_meet(a[6:11], b[6:11])::int;
END
$$;

-- ------------------------------------------------------ measures of a shape

CREATE OR REPLACE FUNCTION adql__area_g(g float8[]) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  kind int := g[1];
  n int;
  i int;
  cd float8;
  vx float8[];
  vy float8[];
  vz float8[];
  h float8;
  rg float8[];
BEGIN
  IF kind = 1 THEN
    RETURN 0;
  ELSIF kind = 2 THEN
    -- 2 pi (1 - cos r) written with sin^2 to keep small circles accurate.
    h := sin(g[4] * 0.017453292519943295::float8 / 2);
    RETURN 12.566370614359172::float8 * h * h * 3282.806350011744::float8;
  ELSIF kind = 3 THEN
    n := g[2];
    FOR i IN 1 .. n LOOP
      cd := adql__cosd(g[2 + 2 * i]);
      vx[i] := cd * adql__cosd(g[1 + 2 * i]);
      vy[i] := cd * adql__sind(g[1 + 2 * i]);
      vz[i] := adql__sind(g[2 + 2 * i]);
    END LOOP;
    RETURN abs(adql__signed_area(vx, vy, vz, n)) * 3282.806350011744::float8;
  END IF;
  rg := adql__box_range(g);
  IF rg[1] = 1 THEN
    RETURN 0;
  END IF;
  RETURN adql__ra_width(rg) * 0.017453292519943295::float8
         * (sin(rg[6] * 0.017453292519943295::float8) - sin(rg[5] * 0.017453292519943295::float8))
         * 3282.806350011744::float8;
END
$$;

-- The centroid {ra, dec} (Polygon::centroid for polygons).
CREATE OR REPLACE FUNCTION adql__centroid_g(g float8[]) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  n int;
  i int;
  j int;
  cd float8;
  vx float8[];
  vy float8[];
  vz float8[];
  sx float8 := 0;
  sy float8 := 0;
  sz float8 := 0;
  w float8;
  wx float8;
  wy float8;
  wz float8;
  len float8;
  ux float8;
  uy float8;
  uz float8;
BEGIN
  IF g[1] <> 3 THEN
    RETURN ARRAY[g[2], g[3]];
  END IF;
  n := g[2];
  FOR i IN 1 .. n LOOP
    cd := adql__cosd(g[2 + 2 * i]);
    vx[i] := cd * adql__cosd(g[1 + 2 * i]);
    vy[i] := cd * adql__sind(g[1 + 2 * i]);
    vz[i] := adql__sind(g[2 + 2 * i]);
  END LOOP;
  IF abs(adql__signed_area(vx, vy, vz, n)) > 1e-4::float8 THEN
    -- Exact: the integral of x over the region is half the sum over the
    -- edges of (arc length x unit normal); for small polygons the terms
    -- cancel below their rounding, hence the other branch.
    FOR i IN 1 .. n LOOP
      j := i % n + 1;
      wx := (vy[j] + vy[i]) * (vz[j] - vz[i]) - (vz[j] + vz[i]) * (vy[j] - vy[i]);
      wy := (vz[j] + vz[i]) * (vx[j] - vx[i]) - (vx[j] + vx[i]) * (vz[j] - vz[i]);
      wz := (vx[j] + vx[i]) * (vy[j] - vy[i]) - (vy[j] + vy[i]) * (vx[j] - vx[i]);
      len := adql__norm(wx, wy, wz);
      IF len > 0 THEN
        len := 1::float8 / len;
        wx := len * wx;
        wy := len * wy;
        wz := len * wz;
      ELSE
        wx := 0;
        wy := 0;
        wz := 0;
      END IF;
      w := adql__angle(vx[i], vy[i], vz[i], vx[j], vy[j], vz[j]);
      sx := sx + w * wx;
      sy := sy + w * wy;
      sz := sz + w * wz;
    END LOOP;
  ELSE
    -- Area-weighted centres of the fan triangles.
    FOR i IN 2 .. n - 1 LOOP
      ux := vx[i] - vx[1];
      uy := vy[i] - vy[1];
      uz := vz[i] - vz[1];
      wx := vx[i + 1] - vx[1];
      wy := vy[i + 1] - vy[1];
      wz := vz[i + 1] - vz[1];
      w := 2::float8 * atan2(adql__dot(vx[1], vy[1], vz[1], uy * wz - uz * wy, uz * wx - ux * wz, ux * wy - uy * wx),
                             1::float8 + adql__dot(vx[1], vy[1], vz[1], vx[i], vy[i], vz[i])
                               + adql__dot(vx[i], vy[i], vz[i], vx[i + 1], vy[i + 1], vz[i + 1])
                               + adql__dot(vx[i + 1], vy[i + 1], vz[i + 1], vx[1], vy[1], vz[1]));
      wx := vx[1] + vx[i] + vx[i + 1];
      wy := vy[1] + vy[i] + vy[i + 1];
      wz := vz[1] + vz[i] + vz[i + 1];
      len := adql__norm(wx, wy, wz);
      IF len > 0 THEN
        len := 1::float8 / len;
        wx := len * wx;
        wy := len * wy;
        wz := len * wz;
      ELSE
        wx := 0;
        wy := 0;
        wz := 0;
      END IF;
      sx := sx + w * wx;
      sy := sy + w * wy;
      sz := sz + w * wz;
    END LOOP;
  END IF;
  IF NOT (adql__norm(sx, sy, sz) > 0) THEN
    FOR i IN 1 .. n LOOP
      sx := sx + vx[i];
      sy := sy + vy[i];
      sz := sz + vz[i];
    END LOOP;
  END IF;
  IF NOT (adql__norm(sx, sy, sz) > 0) THEN
    RETURN ARRAY[g[3], g[4]];
  END IF;
  RETURN adql__to_sky(sx, sy, sz);
END
$$;

-- ------------------------------------------------------- the public functions

CREATE OR REPLACE FUNCTION adql_point(ra float8, decl float8) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF NOT (adql__finite(ra) AND adql__finite(decl)) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'geometry coordinates must be finite numbers';
  END IF;
  IF decl < -90 OR decl > 90 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'declination ' || adql__fmt(decl) || ' is outside [-90, 90]';
  END IF;
  RETURN adql__stcs(ARRAY[1, adql__nra(ra), decl]);
END
$$;

CREATE OR REPLACE FUNCTION adql_circle(ra float8, decl float8, radius float8) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF NOT (adql__finite(ra) AND adql__finite(decl) AND adql__finite(radius)) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'geometry coordinates must be finite numbers';
  END IF;
  IF decl < -90 OR decl > 90 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'declination ' || adql__fmt(decl) || ' is outside [-90, 90]';
  END IF;
  IF radius < 0 OR radius > 180 THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = 'circle radius ' || adql__fmt(radius) || ' is outside [0, 180]';
  END IF;
  RETURN adql__stcs(ARRAY[2, adql__nra(ra), decl, radius]);
END
$$;

CREATE OR REPLACE FUNCTION adql_box(ra float8, decl float8, width float8, height float8) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF NOT (adql__finite(ra) AND adql__finite(decl) AND adql__finite(width) AND adql__finite(height)) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'geometry coordinates must be finite numbers';
  END IF;
  IF decl < -90 OR decl > 90 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'declination ' || adql__fmt(decl) || ' is outside [-90, 90]';
  END IF;
  IF width < 0 OR height < 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'box width and height must not be negative';
  END IF;
  RETURN adql__stcs(ARRAY[4, adql__nra(ra), decl, width, height]);
END
$$;

-- Any number of arguments, as on SQLite (fewer than six is an error).
CREATE OR REPLACE FUNCTION adql_polygon(VARIADIC coordinates float8[] DEFAULT '{}') RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  g float8[];
BEGIN
  IF coordinates IS NULL OR array_position(coordinates, NULL) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  g := adql__polygon_core(coordinates);
  IF g[1] < 0 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = adql__error_text(g);
  END IF;
  RETURN adql__stcs(g);
END
$$;

-- The predicates parse (and prepare) each geometry in the argument list of
-- an inlined SQL wrapper: a constant search shape is then done once, when
-- the statement is planned. NULL short-cuts before any parsing, as the
-- C++ does.
CREATE OR REPLACE FUNCTION adql_contains(inner_region text, outer_region text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN inner_region IS NULL OR outer_region IS NULL THEN NULL::int
              ELSE adql__contains_g(adql__prep(adql__parse(inner_region)), adql__prep(adql__parse(outer_region))) END
$$;

CREATE OR REPLACE FUNCTION adql_intersects(a text, b text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL::int
              ELSE adql__intersects_g(adql__prep(adql__parse(a)), adql__prep(adql__parse(b))) END
$$;

-- A point given by its numbers in a region given as text; the region is
-- parsed before the point is checked, as on SQLite.
CREATE OR REPLACE FUNCTION adql__contains_point_g(ra float8, decl float8, region float8[]) RETURNS int
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  cd float8;
  ra_n float8;
BEGIN
  IF NOT (adql__finite(ra) AND adql__finite(decl)) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'geometry coordinates must be finite numbers';
  END IF;
  IF decl < -90 OR decl > 90 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'declination ' || adql__fmt(decl) || ' is outside [-90, 90]';
  END IF;
  ra_n := adql__nra(ra);
  cd := adql__cosd(decl);
  RETURN adql__point_in(ARRAY[1, ra_n, decl, cd * adql__cosd(ra_n), cd * adql__sind(ra_n), adql__sind(decl)],
                        region)::int;
END
$$;

CREATE OR REPLACE FUNCTION adql_contains_point(ra float8, decl float8, region text) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN ra IS NULL OR decl IS NULL OR region IS NULL THEN NULL::int
              ELSE adql__contains_point_g(ra, decl, adql__prep(adql__parse(region))) END
$$;

-- Raise the error of an invalid point or circle given by its numbers. The
-- inlined functions below call these only in the CASE branch of invalid
-- input; taking the offending values as arguments, they are evaluated at
-- planning time only when those values are constants, that is when the
-- statement is bound to fail.
CREATE OR REPLACE FUNCTION adql__bad_point(ra float8, decl float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF NOT (adql__finite(ra) AND adql__finite(decl)) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'geometry coordinates must be finite numbers';
  END IF;
  IF decl < -90 OR decl > 90 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'declination ' || adql__fmt(decl) || ' is outside [-90, 90]';
  END IF;
  RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION adql__bad_circle(ra float8, decl float8, radius float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF NOT (adql__finite(ra) AND adql__finite(decl) AND adql__finite(radius)) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'geometry coordinates must be finite numbers';
  END IF;
  IF decl < -90 OR decl > 90 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'declination ' || adql__fmt(decl) || ' is outside [-90, 90]';
  END IF;
  IF radius < 0 OR radius > 180 THEN
    RAISE EXCEPTION USING ERRCODE = '22023',
      MESSAGE = 'circle radius ' || adql__fmt(radius) || ' is outside [0, 180]';
  END IF;
  RETURN NULL;
END
$$;

-- Validity of a point's numbers (NaN compares above everything).
CREATE OR REPLACE FUNCTION adql__good_point(ra float8, decl float8) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT abs(ra) < 'Infinity'::float8 AND decl >= -90 AND decl <= 90
$$;

-- The cone search of CONTAINS(POINT(ra, dec), CIRCLE(ra0, dec0, radius)):
-- inlined into the query, one PL/pgSQL call per row.
CREATE OR REPLACE FUNCTION adql_contains_point_circle(ra float8, decl float8, ra0 float8, dec0 float8, radius float8)
RETURNS int LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN ra IS NULL OR decl IS NULL OR ra0 IS NULL OR dec0 IS NULL OR radius IS NULL THEN NULL::int
              WHEN NOT adql__good_point(ra, decl) THEN adql__bad_point(ra, decl)::int
              WHEN NOT (adql__good_point(ra0, dec0) AND radius >= 0 AND radius <= 180)
                THEN adql__bad_circle(ra0, dec0, radius)::int
              ELSE (adql__dist_rad(adql__nra(ra0), dec0, adql__nra(ra), decl) * 57.29577951308232::float8
                    <= radius)::int END
$$;

CREATE OR REPLACE FUNCTION adql_distance(ra1 float8, dec1 float8, ra2 float8, dec2 float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN ra1 IS NULL OR dec1 IS NULL OR ra2 IS NULL OR dec2 IS NULL THEN NULL::float8
              WHEN NOT adql__good_point(ra1, dec1) THEN adql__bad_point(ra1, dec1)
              WHEN NOT adql__good_point(ra2, dec2) THEN adql__bad_point(ra2, dec2)
              ELSE adql__dist_rad(adql__nra(ra1), dec1, adql__nra(ra2), dec2) * 57.29577951308232::float8 END
$$;

CREATE OR REPLACE FUNCTION adql__point_distance_g(a float8[], b float8[]) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF a[1] <> 1 OR b[1] <> 1 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a point is needed';
  END IF;
  RETURN adql__dist_deg(a[2], a[3], b[2], b[3]);
END
$$;

CREATE OR REPLACE FUNCTION adql_point_distance(a text, b text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL::float8
              ELSE adql__point_distance_g(adql__parse(a), adql__parse(b)) END
$$;

CREATE OR REPLACE FUNCTION adql_area(region text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT adql__area_g(adql__parse(region)) $$;

CREATE OR REPLACE FUNCTION adql__coord_g(g float8[], k int) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  IF g[1] <> 1 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a point is needed';
  END IF;
  RETURN g[1 + k];
END
$$;

CREATE OR REPLACE FUNCTION adql_coord1(point text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT adql__coord_g(adql__parse(point), 1) $$;

CREATE OR REPLACE FUNCTION adql_coord2(point text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT adql__coord_g(adql__parse(point), 2) $$;

CREATE OR REPLACE FUNCTION adql_coordsys(region text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN adql__parse(region) IS NULL THEN NULL::text ELSE 'ICRS' END
$$;

CREATE OR REPLACE FUNCTION adql__centroid_text(g float8[]) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT adql__stcs(ARRAY[1::float8] || adql__centroid_g(g)) $$;

CREATE OR REPLACE FUNCTION adql_centroid(region text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT adql__centroid_text(adql__parse(region)) $$;

-- ADQL's numeric functions as the C++ ones compute them on SQLite
-- (adql/sql_functions.cpp): a result that is not a finite number is NULL,
-- where PostgreSQL's own functions raise an error (the square root of a
-- negative number, the logarithm of zero, an overflow or an underflow) or
-- return infinity. A query therefore gives the same rows on both databases.
-- One-statement SQL functions: PostgreSQL inlines them into the query.
CREATE OR REPLACE FUNCTION adql_sqrt(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN x >= 0 THEN sqrt(x) END $$;

CREATE OR REPLACE FUNCTION adql_log(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN x > 0 THEN ln(x) END $$;

CREATE OR REPLACE FUNCTION adql_log10(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN x > 0 THEN log(x) END $$;

CREATE OR REPLACE FUNCTION adql_acos(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN x BETWEEN -1 AND 1 THEN acos(x) END $$;

CREATE OR REPLACE FUNCTION adql_asin(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN x BETWEEN -1 AND 1 THEN asin(x) END $$;

CREATE OR REPLACE FUNCTION adql_cot(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT CASE WHEN x <> 0 THEN cot(x) END $$;

-- exp() overflows to infinity above ln(DBL_MAX) and underflows to 0 below
-- ln of the smallest subnormal double; PostgreSQL raises errors for both.
CREATE OR REPLACE FUNCTION adql_exp(x float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN x > 709.782712893384 THEN NULL WHEN x < -745.1332191019412 THEN 0 ELSE exp(x) END $$;

-- pow(): NaN for a negative base and a fractional exponent, infinity for
-- zero to a negative power or an overflow, 0 on underflow.
CREATE OR REPLACE FUNCTION adql_power(x float8, y float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN x = 0 AND y < 0 THEN NULL
    WHEN x < 0 AND y <> trunc(y) THEN NULL
    WHEN x <> 0 AND abs(x) <> 1 AND y * ln(abs(x)) > 709.782712893384 THEN NULL
    WHEN x <> 0 AND abs(x) <> 1 AND y * ln(abs(x)) < -745.1332191019412 THEN 0
    ELSE power(x, y) END $$;

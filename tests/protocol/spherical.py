"""Exact spherical geometry in numpy for test oracles (independent of the C++ code)."""
import numpy as np


def unit_vectors(ra_deg, dec_deg):
    ra = np.radians(np.asarray(ra_deg, dtype=float))
    dec = np.radians(np.asarray(dec_deg, dtype=float))
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def parse_stcs_polygon(text):
    words = text.split()
    assert words[0] == "POLYGON", text
    numbers = [float(w) for w in words[1:] if w not in ("ICRS", "FK5", "J2000")]
    assert len(numbers) % 2 == 0 and len(numbers) >= 6, text
    return np.array(numbers).reshape(-1, 2)


def convex_polygon_contains(vertices_radec, ra_deg, dec_deg, tolerance=1e-12):
    """True where (ra, dec) lies inside the convex spherical polygon (either winding)."""
    v = unit_vectors(vertices_radec[:, 0], vertices_radec[:, 1])
    normals = np.cross(v, np.roll(v, -1, axis=0))
    p = unit_vectors(ra_deg, dec_deg)
    side = p @ normals.T
    return np.all(side >= -tolerance, axis=-1) | np.all(side <= tolerance, axis=-1)


def angular_distance_deg(a, b):
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    dot = np.sum(a * b, axis=-1)
    return np.degrees(np.arctan2(cross, dot))


def distance_to_arc_deg(p, a, b):
    """Smallest angular distance from point p to the great-circle arc a-b (unit vectors)."""
    n = np.cross(a, b)
    n = n / np.linalg.norm(n)
    projected = p - np.dot(p, n) * n
    norm = np.linalg.norm(projected)
    if norm > 0:
        q = projected / norm
        # q lies on the arc if it is between a and b.
        if np.dot(np.cross(a, q), n) >= 0 and np.dot(np.cross(q, b), n) >= 0:
            return float(angular_distance_deg(p, q))
    return float(min(angular_distance_deg(p, a), angular_distance_deg(p, b)))


def polygon_intersects_circle(vertices_radec, ra, dec, radius_deg):
    if convex_polygon_contains(vertices_radec, np.array([ra]), np.array([dec]))[0]:
        return True
    c = unit_vectors(ra, dec)
    v = unit_vectors(vertices_radec[:, 0], vertices_radec[:, 1])
    for i in range(len(v)):
        if distance_to_arc_deg(c, v[i], v[(i + 1) % len(v)]) <= radius_deg:
            return True
    return False

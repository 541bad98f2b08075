"""The publishing registry: OAI-PMH 2.0 at /api/registry/oai with the
VOResource 1.1 records of the authority, the organisation, the registry, every
service and every HiPS map.

The records are checked against the standards (OAI-PMH 2.0 envelope and error
codes, Registry Interfaces, VOResource / VODataService elements and their
order), against pyvo's strict VOSI parsers (each capability, the TAP
tableset), and against what the services say of themselves (/capabilities,
/tables, the HiPS properties).
"""
import copy
import io
import re
import warnings
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest
import requests
from astropy.utils.exceptions import AstropyWarning
from pyvo.io import vosi
from pyvo.io.vosi.exceptions import W17
from pyvo.utils.xml.exceptions import UnknownElementWarning

from conftest import run, start_server, stop_server

OAI = "http://www.openarchives.org/OAI/2.0/"
RI = "http://www.ivoa.net/xml/RegistryInterface/v1.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
NS = {"oai": OAI, "ri": RI, "oai_dc": OAI_DC, "dc": DC}
XSI_TYPE = f"{{{XSI}}}type"
DATESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

PAGE_SIZE = 3
STATUS_PUBLIC = "public mirror clonable"
STATUS_RIGHTS = "private master unclonable"

# The namespaces a capability's xsi:type values use, for pyvo's parsers
# (which read the prefixes as written).
CAPABILITIES_OPEN = (
    '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0" '
    'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" '
    'xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0" xmlns:vg="http://www.ivoa.net/xml/VORegistry/v1.0" '
    'xmlns:sia="http://www.ivoa.net/xml/SIA/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">')
TABLESET_OPEN = (
    '<vosi:tableset xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0" '
    'xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">')

# Element order of the resource types (VOResource 1.1, VODataService 1.2,
# VORegistry 1.1); `*` marks the elements that may repeat or be absent.
RESOURCE = ["title", "shortName?", "identifier", "curation", "content"]
ORDER = {
    "vg:Authority": RESOURCE + ["managingOrg"],
    "vr:Organisation": RESOURCE,
    "vg:Registry": RESOURCE + ["capability*", "full", "managedAuthority*"],
    "vs:DataService": RESOURCE + ["capability*", "coverage?"],
    "vs:CatalogService": RESOURCE + ["capability*", "coverage?", "tableset?"],
}


@pytest.fixture(scope="module")
def oai_repo(survey_dir, tmp_path_factory):
    repo = tmp_path_factory.mktemp("oairepo") / "orepo"
    run("ingest", "--repo", repo, "--transfer", "hardlink", survey_dir)
    # A small map: its records and properties matter here, not its pixels.
    run("hips", "--repo", repo, "--band", "r", "--order", "6", "--formats", "png")
    return repo


@pytest.fixture(scope="module")
def oai_server(oai_repo, tmp_path_factory):
    config = tmp_path_factory.mktemp("oaiconf") / "pixserve.yaml"
    config.write_text(
        "publishing:\n"
        "  organisation: Test Observatory Data Centre\n"
        "  contact_name: Test help desk\n"
        "  contact_email: help@test.example\n"
        "  creator: The Test Survey team\n"
        "  subjects: [Sky surveys, Direct imaging]\n"
        "  reference_url: https://test.example/survey\n"
        f"  page_size: {PAGE_SIZE}\n"
        f"  hips_status_public: {STATUS_PUBLIC}\n"
        "hips:\n  full_access: open\n")
    srv = start_server(oai_repo, "--config", config)
    yield srv
    assert stop_server(srv) == 0


def endpoint(srv):
    return f"{srv.url}/api/registry/oai"


def oai(srv, method="GET", **params):
    url = endpoint(srv)
    r = requests.post(url, data=params) if method == "POST" else requests.get(url, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(r.content)
    assert root.tag == f"{{{OAI}}}OAI-PMH"
    assert root.get(f"{{{XSI}}}schemaLocation").split() == [OAI, "http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd"]
    children = list(root)
    assert children[0].tag == f"{{{OAI}}}responseDate" and DATESTAMP.match(children[0].text)
    assert children[1].tag == f"{{{OAI}}}request" and children[1].text == url
    return root


def error_of(root):
    e = root.find("oai:error", NS)
    return None if e is None else e.get("code")


def walk(srv, verb, **params):
    """Every page of a list; returns (elements, pages)."""
    items, pages = [], 0
    root = oai(srv, verb=verb, **params)
    while True:
        assert error_of(root) is None, ET.tostring(root)
        pages += 1
        body = root.find(f"oai:{verb}", NS)
        items += [e for e in body if e.tag != f"{{{OAI}}}resumptionToken"]
        token = body.find("oai:resumptionToken", NS)
        if token is None or not (token.text or "").strip():
            break
        assert int(token.get("completeListSize")) >= len(items)
        root = oai(srv, verb=verb, resumptionToken=token.text)
    return items, pages


@pytest.fixture(scope="module")
def records(oai_server):
    """identifier -> (header, ri:Resource) of every record."""
    items, _ = walk(oai_server, "ListRecords", metadataPrefix="ivo_vor")
    out = {}
    for record in items:
        header = record.find("oai:header", NS)
        resource = record.find("oai:metadata/ri:Resource", NS)
        assert resource is not None
        out[header.findtext("oai:identifier", namespaces=NS)] = (header, resource)
    return out


@pytest.fixture(scope="module")
def authority(oai_server):
    return oai(oai_server, verb="Identify").findtext(".//managedAuthority")


def services(srv):
    return {s["name"]: s for s in requests.get(f"{srv.url}/api/services.json").json()["services"]}


def xsi_type(element):
    return element.get(XSI_TYPE)


def check_order(resource):
    expected = ORDER[xsi_type(resource)]
    names = [child.tag for child in resource]
    i = 0
    for spec in expected:
        name = spec.rstrip("*?")
        count = 0
        while i < len(names) and names[i] == name:
            i, count = i + 1, count + 1
        if spec.endswith("*"):
            continue
        assert count == 1 or (spec.endswith("?") and count == 0), f"{name} in {names}"
    assert i == len(names), f"unexpected {names[i:]} in {xsi_type(resource)}"


def parse_capability(capability, tolerated=()):
    """pyvo's VOSI capabilities parser on one capability: every warning it
    has is a failure, but W17 (pyvo 1.2.1 allows one queryType, where
    VODataService allows GET and POST) and those `tolerated`. pyvo 1.2.1's
    ParamHTTP does not know VODataService's `param` either: they are
    compared with the service's own (capability_params) and left out here."""
    capability = copy.deepcopy(capability)
    for interface in capability.findall("interface"):
        for param in interface.findall("param"):
            interface.remove(param)
    text = CAPABILITIES_OPEN + ET.tostring(capability, encoding="unicode") + "</vosi:capabilities>"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parsed = vosi.parse_capabilities(io.BytesIO(text.encode()), pedantic=False)
    problems = [str(w.message) for w in caught
                if issubclass(w.category, AstropyWarning) and not issubclass(w.category, (W17, *tolerated))]
    assert not problems, (problems, text)
    return parsed


def capability_params(capabilities):
    """Each interface's parameters: (standardID, accessURL, [(name, datatype, use), ...]), sorted."""
    return sorted((c.get("standardID") or "", i.findtext("accessURL"),
                   [(p.findtext("name"), p.findtext("dataType"), p.get("use")) for p in i.findall("param")])
                  for c in capabilities for i in c.findall("interface"))


def capability_summary(capabilities):
    """(standardID, accessURLs) of each capability (ElementTree elements), sorted."""
    return sorted((c.get("standardID") or "", sorted(a.text for a in c.iter("accessURL"))) for c in capabilities)


# ------------------------------------------------------------------ verbs


def test_identify_describes_the_registry(oai_server, authority):
    for method in ("GET", "POST"):
        root = oai(oai_server, method, verb="Identify")
        assert root.find("oai:request", NS).get("verb") == "Identify"
        identify = root.find("oai:Identify", NS)
        names = [c.tag.split("}")[1] for c in identify]
        assert names == ["repositoryName", "baseURL", "protocolVersion", "adminEmail", "earliestDatestamp",
                         "deletedRecord", "granularity", "description"]
        assert identify.findtext("oai:baseURL", namespaces=NS) == endpoint(oai_server)
        assert identify.findtext("oai:protocolVersion", namespaces=NS) == "2.0"
        assert identify.findtext("oai:adminEmail", namespaces=NS) == "help@test.example"
        assert identify.findtext("oai:granularity", namespaces=NS) == "YYYY-MM-DDThh:mm:ssZ"
        assert DATESTAMP.match(identify.findtext("oai:earliestDatestamp", namespaces=NS))
        registry = identify.find("oai:description/ri:Resource", NS)
        assert xsi_type(registry) == "vg:Registry"
        assert registry.findtext("identifier") == f"ivo://{authority}/registry"
        harvest = registry.find("capability")
        assert harvest.get("standardID") == "ivo://ivoa.net/std/Registry" and xsi_type(harvest) == "vg:Harvest"
        interface = harvest.find("interface")
        assert xsi_type(interface) == "vg:OAIHTTP" and interface.get("role") == "std"
        assert interface.findtext("accessURL") == endpoint(oai_server)
        assert harvest.findtext("maxRecords") == str(PAGE_SIZE)
        assert registry.findtext("full") == "false"
    assert authority


def test_metadata_formats_and_sets(oai_server, authority):
    for params in ({}, {"identifier": f"ivo://{authority}/tap"}):
        root = oai(oai_server, verb="ListMetadataFormats", **params)
        formats = {f.findtext("oai:metadataPrefix", namespaces=NS): f
                   for f in root.iterfind(".//oai:metadataFormat", NS)}
        assert set(formats) == {"ivo_vor", "oai_dc"}
        assert formats["ivo_vor"].findtext("oai:metadataNamespace", namespaces=NS) == RI
        assert formats["oai_dc"].findtext("oai:metadataNamespace", namespaces=NS) == OAI_DC
    sets = oai(oai_server, verb="ListSets").findall(".//oai:set", NS)
    assert [s.findtext("oai:setSpec", namespaces=NS) for s in sets] == ["ivo_managed"]
    assert sets[0].findtext("oai:setName", namespaces=NS)


def test_error_codes(oai_server, authority):
    token = oai(oai_server, verb="ListRecords", metadataPrefix="ivo_vor").findtext(".//oai:resumptionToken",
                                                                                  namespaces=NS)
    assert token
    cases = [
        ({}, "badVerb"),
        ({"verb": "Harvest"}, "badVerb"),
        ({"verb": "Identify", "identifier": "x"}, "badArgument"),
        ({"verb": "ListRecords"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "2024-02-30"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "2024-01-01", "until": "2024-01-02T00:00:00Z"},
         "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "2024-02-01", "until": "2024-01-01"},
         "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "resumptionToken": token}, "badArgument"),
        ({"verb": "GetRecord", "identifier": f"ivo://{authority}/tap"}, "badArgument"),
        ({"verb": "GetRecord", "identifier": f"ivo://{authority}/tap", "metadataPrefix": "marc"},
         "cannotDisseminateFormat"),
        ({"verb": "ListIdentifiers", "metadataPrefix": "marc"}, "cannotDisseminateFormat"),
        ({"verb": "GetRecord", "identifier": f"ivo://{authority}/nothing", "metadataPrefix": "ivo_vor"},
         "idDoesNotExist"),
        ({"verb": "ListMetadataFormats", "identifier": f"ivo://{authority}/nothing"}, "idDoesNotExist"),
        ({"verb": "ListRecords", "metadataPrefix": "ivo_vor", "from": "2999-01-01"}, "noRecordsMatch"),
        ({"verb": "ListIdentifiers", "metadataPrefix": "ivo_vor", "set": "nothing"}, "noRecordsMatch"),
        ({"verb": "ListRecords", "resumptionToken": token[:-1] + ("0" if token[-1] != "0" else "1")},
         "badResumptionToken"),
        ({"verb": "ListIdentifiers", "resumptionToken": token}, "badResumptionToken"),
        ({"verb": "ListSets", "resumptionToken": token}, "badResumptionToken"),
    ]
    for params, code in cases:
        for method in ("GET", "POST"):
            root = oai(oai_server, method, **params)
            assert error_of(root) == code, (method, params, ET.tostring(root))
            request = root.find("oai:request", NS)
            if code in ("badVerb", "badArgument"):
                assert not request.attrib, params
            else:
                assert dict(request.attrib) == params
    # A repeated argument.
    r = requests.get(f"{endpoint(oai_server)}?verb=ListRecords&metadataPrefix=ivo_vor&metadataPrefix=oai_dc")
    assert error_of(ET.fromstring(r.content)) == "badArgument"
    r = requests.get(f"{endpoint(oai_server)}?verb=Identify&verb=Identify")
    assert error_of(ET.fromstring(r.content)) == "badVerb"


def test_resumption_walks_return_each_record_once(oai_server, records):
    identifiers, pages = walk(oai_server, "ListIdentifiers", metadataPrefix="ivo_vor")
    ids = [h.findtext("oai:identifier", namespaces=NS) for h in identifiers]
    assert pages >= 3 and len(ids) == len(set(ids))
    assert ids == list(records)
    for header in identifiers:
        assert DATESTAMP.match(header.findtext("oai:datestamp", namespaces=NS))
        assert header.findtext("oai:setSpec", namespaces=NS) == "ivo_managed"
    dc, _ = walk(oai_server, "ListRecords", metadataPrefix="oai_dc", set="ivo_managed")
    assert [r.findtext("oai:header/oai:identifier", namespaces=NS) for r in dc] == ids
    for record in dc:
        d = record.find("oai:metadata/oai_dc:dc", NS)
        assert d.findtext("dc:title", namespaces=NS) and d.findtext("dc:identifier", namespaces=NS)
        assert d.findtext("dc:publisher", namespaces=NS) == "Test Observatory Data Centre"


def test_from_and_until_select_by_datestamp(oai_server, records):
    stamps = {i: datetime.strptime(h.findtext("oai:datestamp", namespaces=NS), "%Y-%m-%dT%H:%M:%SZ")
              for i, (h, _) in records.items()}
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    for pivot in sorted(set(stamps.values())):
        later, _ = walk(oai_server, "ListIdentifiers", metadataPrefix="ivo_vor", **{"from": pivot.strftime(fmt)})
        assert {h.findtext("oai:identifier", namespaces=NS) for h in later} == {i for i, t in stamps.items()
                                                                              if t >= pivot}
        earlier, _ = walk(oai_server, "ListIdentifiers", metadataPrefix="ivo_vor", until=pivot.strftime(fmt))
        assert {h.findtext("oai:identifier", namespaces=NS) for h in earlier} == {i for i, t in stamps.items()
                                                                                if t <= pivot}
    newest = max(stamps.values())
    day, _ = walk(oai_server, "ListIdentifiers", metadataPrefix="ivo_vor", **{"from": newest.strftime("%Y-%m-%d"),
                                                                            "until": newest.strftime("%Y-%m-%d")})
    assert {h.findtext("oai:identifier", namespaces=NS) for h in day} == {i for i, t in stamps.items()
                                                                        if t.date() == newest.date()}
    after = (newest + timedelta(seconds=1)).strftime(fmt)
    assert error_of(oai(oai_server, verb="ListRecords", metadataPrefix="ivo_vor", **{"from": after})) == \
        "noRecordsMatch"
    before = (min(stamps.values()) - timedelta(seconds=1)).strftime(fmt)
    assert error_of(oai(oai_server, verb="ListIdentifiers", metadataPrefix="oai_dc", until=before)) == \
        "noRecordsMatch"
    assert newest <= datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(seconds=5)


def test_get_record_equals_the_listed_one(oai_server, records):
    for identifier, (_, listed) in records.items():
        root = oai(oai_server, verb="GetRecord", identifier=identifier, metadataPrefix="ivo_vor")
        got = root.find("oai:GetRecord/oai:record/oai:metadata/ri:Resource", NS)
        assert ET.tostring(got) == ET.tostring(listed)


# ---------------------------------------------------------------- records


def test_every_record_has_what_voresource_requires(oai_server, records, authority):
    types = {}
    for identifier, (header, r) in records.items():
        types.setdefault(xsi_type(r), []).append(identifier)
        assert r.get("status") == "active"
        assert DATESTAMP.match(r.get("created")) and DATESTAMP.match(r.get("updated"))
        assert r.get("created") <= r.get("updated")
        assert r.get("updated") == header.findtext("oai:datestamp", namespaces=NS)
        assert r.findtext("identifier") == identifier
        assert identifier == f"ivo://{authority}" or identifier.startswith(f"ivo://{authority}/")
        assert r.findtext("title")
        if r.find("shortName") is not None:
            assert 0 < len(r.findtext("shortName")) <= 16
        curation = r.find("curation")
        publisher = curation.find("publisher")
        assert publisher.text == "Test Observatory Data Centre" and publisher.get("ivo-id") == f"ivo://{authority}/org"
        assert curation.findtext("creator/name") == "The Test Survey team"
        assert curation.findtext("contact/name") == "Test help desk"
        assert curation.findtext("contact/email") == "help@test.example"
        content = r.find("content")
        assert [s.text for s in content.findall("subject")] == ["Sky surveys", "Direct imaging"]
        assert content.findtext("description")
        assert content.findtext("referenceURL") == "https://test.example/survey"
        assert content.findtext("contentLevel") == "Research"
        if xsi_type(r) in ("vs:DataService", "vs:CatalogService"):
            coverage = r.find("coverage")
            assert [w.text for w in coverage.findall("waveband")] == ["Optical"]
            assert coverage.findtext("footprint").startswith(oai_server.url)
        check_order(r)
    assert types["vg:Authority"] == [f"ivo://{authority}"]
    assert types["vr:Organisation"] == [f"ivo://{authority}/org"]
    assert types["vg:Registry"] == [f"ivo://{authority}/registry"]
    authority_record = records[f"ivo://{authority}"][1]
    assert authority_record.find("managingOrg").get("ivo-id") == f"ivo://{authority}/org"
    registry = records[f"ivo://{authority}/registry"][1]
    assert registry.findtext("managedAuthority") == authority
    footprint = records[f"ivo://{authority}/sia"][1].find("coverage/footprint")
    assert footprint.get("ivo-id") == f"ivo://{authority}/moc"
    assert requests.get(footprint.text).headers["Content-Type"] == "application/fits"


def test_service_records_agree_with_their_capabilities(oai_server, records, authority):
    catalogue = services(oai_server)
    for name in ("tap", "sia", "soda", "datalink", "moc", "hips"):
        assert name in catalogue
    for name in catalogue:
        _, r = records[f"ivo://{authority}/{name}"]
        caps = r.findall("capability")
        served = ET.fromstring(requests.get(f"{oai_server.url}/api/{name}/capabilities").content)
        assert capability_summary(caps) == capability_summary(served.findall("capability")), name
        assert capability_params(caps) == capability_params(served.findall("capability")), name
        for cap in caps:
            if xsi_type(cap) == "sia:SimpleImageAccess":
                # SimpleDALRegExt's elements are unknown to pyvo: checked here, the rest by pyvo.
                assert cap.get("standardID") == "ivo://ivoa.net/std/SIA#query-2.0"
                assert cap.findtext("imageServiceType") in ("Cutout", "Mosaic", "Atlas", "Pointed")
                assert int(cap.findtext("maxRecords")) > 0
                tags = [c.tag for c in cap]
                assert tags.index("imageServiceType") > max(i for i, t in enumerate(tags) if t == "interface")
                for extra in cap.findall("imageServiceType") + cap.findall("maxRecords"):
                    cap.remove(extra)
                del cap.attrib[XSI_TYPE]
            parsed = parse_capability(cap)
            assert [c.standardid for c in parsed] == [cap.get("standardID")]
        standard_ids = {c.get("standardID") for c in caps}
        assert set(catalogue[name]["standard_ids"]) <= standard_ids
    assert "ivo://ivoa.net/std/SODA#sync-1.0" in {c.get("standardID") for c in records[f"ivo://{authority}/soda"][1]
                                                   .findall("capability")}
    assert "ivo://ivoa.net/std/SODA#async-1.0" in {c.get("standardID") for c in records[f"ivo://{authority}/soda"][1]
                                                    .findall("capability")}
    tap = records[f"ivo://{authority}/tap"][1]
    assert xsi_type(tap) == "vs:CatalogService"
    assert xsi_type(tap.find("capability[@standardID='ivo://ivoa.net/std/TAP']")) == "tr:TableAccess"


def test_tap_record_tableset_is_the_tables_document(oai_server, records, authority):
    tableset = records[f"ivo://{authority}/tap"][1].find("tableset")
    text = TABLESET_OPEN + "".join(ET.tostring(s, encoding="unicode") for s in tableset) + "</vosi:tableset>"
    parsed = vosi.parse_tables(io.BytesIO(text.encode()), pedantic=True)
    served = vosi.parse_tables(io.BytesIO(requests.get(f"{oai_server.url}/api/tap/tables").content), pedantic=True)

    def shape(tables):
        return {t.name: [c.name for c in t.columns] for t in tables.iter_tables()}

    assert shape(parsed) == shape(served)
    assert "ivoa.obscore" in shape(parsed) and "obs_publisher_did" in shape(parsed)["ivoa.obscore"]


def test_registry_harvest_capability_parses(records, authority):
    harvest = records[f"ivo://{authority}/registry"][1].find("capability")
    # vg:Harvest's maxRecords is an extension element pyvo does not know.
    parsed = parse_capability(harvest, tolerated=(UnknownElementWarning,))
    assert parsed[0].standardid == "ivo://ivoa.net/std/Registry"
    assert [c.tag for c in harvest] == ["description", "interface", "maxRecords"]


def test_hips_records_carry_the_status_of_the_served_properties(oai_server, records, authority):
    maps = {i: r for i, (_, r) in records.items() if i.startswith(f"ivo://{authority}/hips/")}
    assert f"ivo://{authority}/hips/deepCoadd-r" in maps and f"ivo://{authority}/hips/full/deepCoadd-r" in maps
    for identifier, r in maps.items():
        assert xsi_type(r) == "vs:CatalogService"
        [cap] = r.findall("capability")
        assert cap.get("standardID") == "ivo://ivoa.net/std/HiPS#hips-1.0"
        parse_capability(cap)
        url = cap.findtext("interface/accessURL")
        described = dict(re.findall(r"(properties|hips_status): ([^;]+?)(?:;|$)", cap.findtext("description")))
        assert described["properties"] == f"{url}/properties"
        properties = {}
        for line in requests.get(described["properties"]).text.splitlines():
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                properties[k.strip()] = v.strip()
        assert properties["hips_status"] == described["hips_status"]
        assert properties["hips_service_url"] == url
        full = "/hips/full/" in identifier
        assert described["hips_status"] == (STATUS_RIGHTS if full else STATUS_PUBLIC)
        footprint = r.find("coverage/footprint").text
        assert footprint == f"{url}/Moc.fits"
        assert requests.get(footprint).headers["Content-Type"] == "application/fits"

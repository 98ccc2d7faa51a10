"""Writes a tiny GeoIP2-Country database for the restriction tests.

Usage: make_geoip.py OUT.mmdb
The networks mirror Barong's spec stub: 196.245.163.0/24 is the United Kingdom (Europe),
140.227.60.0/24 is Japan (Asia); everything else is unknown.
"""
import sys

from mmdb_writer import MMDBWriter
from netaddr import IPSet

PLACES = {
    "196.245.163.0/24": ("GB", "United Kingdom", "EU", "Europe"),
    "140.227.60.0/24": ("JP", "Japan", "AS", "Asia"),
}


def record(iso, country, continent_code, continent):
    return {
        "country": {"iso_code": iso, "names": {"en": country}},
        "continent": {"code": continent_code, "names": {"en": continent}},
    }


def main(out):
    writer = MMDBWriter(ip_version=4, database_type="GeoIP2-Country", languages=["en"])
    for network, place in PLACES.items():
        writer.insert_network(IPSet([network]), record(*place))
    writer.to_db_file(out)


if __name__ == "__main__":
    main(sys.argv[1])

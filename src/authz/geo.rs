//! GeoIP for country and continent restrictions (and activity records): names in the
//! configured language, as Barong compares names rather than ISO codes.

use std::net::IpAddr;
use std::path::Path;

use maxminddb::{Reader, geoip2};

use super::policy::Location;

/// An opened MaxMind database.
pub struct GeoIp {
    reader: Reader<Vec<u8>>,
    lang: String,
}

impl GeoIp {
    /// Opens the database at `path`; `lang` is `BARONG_GEOIP_LANG`.
    pub fn open(path: &Path, lang: &str) -> Result<Self, String> {
        let reader = Reader::open_readfile(path)
            .map_err(|e| format!("cannot open BARONG_MAXMINDDB_PATH {}: {e}", path.display()))?;
        Ok(Self {
            reader,
            lang: lang.to_owned(),
        })
    }

    /// Country and continent names of `ip`; unknown addresses give empty names.
    pub fn locate(&self, ip: IpAddr) -> Location {
        let Ok(result) = self.reader.lookup(ip) else {
            return Location::default();
        };
        let Ok(Some(record)) = result.decode::<geoip2::Country>() else {
            return Location::default();
        };
        Location {
            country: self.name(&record.country.names),
            continent: self.name(&record.continent.names),
        }
    }

    fn name(&self, names: &geoip2::Names<'_>) -> Option<String> {
        let name = match self.lang.as_str() {
            "de" => names.german,
            "es" => names.spanish,
            "fr" => names.french,
            "ja" => names.japanese,
            "ru" => names.russian,
            _ => names.english,
        };
        name.map(str::to_owned)
    }
}

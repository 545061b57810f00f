//! The SMBIOS chassis asset tag, read from the bytes Windows' firmware table API returns
//! (`GetSystemFirmwareTable('RSMB', 0)`): how a Windows VM tells it runs on Azure, the same tag
//! Linux reads from `/sys/class/dmi/id/chassis_asset_tag`. Parsing only; no I/O, so it is tested
//! on every platform over real dumps.
//!
//! Layouts: the `RawSMBIOSData` header (Microsoft Learn, `GetSystemFirmwareTable`: "the raw
//! SMBIOS firmware table provider ... RawSMBIOSData": four version bytes, a DWORD length, the
//! table) and, for the table, DMTF DSP0134 (SMBIOS reference specification), 6.1.2 structure
//! header (type, length, handle; then the string set, each string NUL-terminated and the set
//! ended by a second NUL) and 7.4 System Enclosure or Chassis (type 3): offset 08h "Asset Tag
//! Number", a 1-based string number, 0 for none.

/// `Used20CallingMethod`, major, minor, DMI revision, then the table length (u32, little endian).
const RAW_HEADER: usize = 8;
/// DSP0134 7.4: the chassis structure.
const CHASSIS: u8 = 3;
/// DSP0134 7.45: the end-of-table structure.
const END_OF_TABLE: u8 = 127;
/// DSP0134 7.4: offset of the chassis' asset tag string number.
const ASSET_TAG_OFFSET: usize = 8;

/// The chassis asset tag in a `RawSMBIOSData` buffer, trimmed; `None` when the buffer is
/// malformed, has no chassis structure, or its chassis names no asset tag (or one it lacks).
pub fn chassis_asset_tag(raw_smbios_data: &[u8]) -> Option<String> {
    let header = raw_smbios_data.get(..RAW_HEADER)?;
    let length = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
    let end = RAW_HEADER.checked_add(length)?.min(raw_smbios_data.len());
    table_chassis_asset_tag(&raw_smbios_data[RAW_HEADER..end])
}

/// [`chassis_asset_tag`] over the structure table alone (what `/sys/firmware/dmi/tables/DMI`
/// holds on Linux).
pub fn table_chassis_asset_tag(table: &[u8]) -> Option<String> {
    structures(table)
        .find(|s| s.kind == CHASSIS)
        .and_then(|s| s.string(*s.formatted.get(ASSET_TAG_OFFSET)?))
        .map(|tag| tag.trim().to_string())
        .filter(|tag| !tag.is_empty())
}

/// One structure: its formatted area (header included) and its strings.
struct Structure<'a> {
    kind: u8,
    formatted: &'a [u8],
    strings: &'a [u8],
}

impl Structure<'_> {
    /// String number `n` (1-based; 0 means "none"), as text.
    fn string(&self, n: u8) -> Option<String> {
        let index = usize::from(n).checked_sub(1)?;
        let bytes = self.strings.split(|b| *b == 0).nth(index)?;
        (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
    }
}

/// The structures of a table, up to the end-of-table structure or the first malformed one.
fn structures(table: &[u8]) -> impl Iterator<Item = Structure<'_>> {
    let mut rest = table;
    std::iter::from_fn(move || {
        let (&kind, &length) = (rest.first()?, rest.get(1)?);
        let length = usize::from(length);
        if length < 4 || rest.len() < length {
            return None;
        }
        let (formatted, after) = rest.split_at(length);
        // The string set ends at the first double NUL (an empty set is just the two NULs).
        let set_end = after.windows(2).position(|w| w == [0, 0])?;
        rest = &after[set_end + 2..];
        if kind == END_OF_TABLE {
            rest = &[];
        }
        Some(Structure {
            kind,
            formatted,
            strings: &after[..set_end],
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `GetSystemFirmwareTable('RSMB')` output of a Microsoft Surface laptop (SMBIOS 3.2): the
    /// fixture `tests/jeffgerlap_3_2_0.dat` of the smbios-lib crate 0.9.4 (MIT), unchanged.
    const SURFACE_RSMB: &[u8] = include_bytes!("../../tests/fixtures/windows/rsmb-surface-laptop.bin");
    /// The structure table of a Hyper-V VM outside Azure: `smbios/testdata/HyperV.dmi` of
    /// siderolabs/go-smbios at c5267640 (MPL-2.0), unchanged.
    const HYPERV_TABLE: &[u8] = include_bytes!("../../tests/fixtures/windows/smbios-hyperv-table.bin");
    /// The value every Azure VM carries (see `env::imds`).
    const AZURE: &str = "7783-7084-3265-9085-8269-3286-77";

    /// `table` behind a `RawSMBIOSData` header, as the firmware table API returns it.
    fn rsmb(table: &[u8]) -> Vec<u8> {
        let mut raw = vec![0, 3, 3, 0];
        raw.extend_from_slice(&(table.len() as u32).to_le_bytes());
        raw.extend_from_slice(table);
        raw
    }

    #[test]
    fn reads_the_chassis_asset_tag_of_a_real_hyper_v_table() {
        assert_eq!(
            chassis_asset_tag(&rsmb(HYPERV_TABLE)).as_deref(),
            Some("1519-7810-4472-8775-7272-8851-12"),
            "Hyper-V outside Azure: the tag is the VM's serial, not Azure's"
        );
        assert_eq!(
            table_chassis_asset_tag(HYPERV_TABLE),
            chassis_asset_tag(&rsmb(HYPERV_TABLE))
        );
    }

    /// No public raw table of an Azure VM was found; Azure's Hyper-V tables differ from the one
    /// above in the asset tag string (a dmidecode listing of an Azure VM shows the same layout:
    /// chassis type 3, "Microsoft Corporation", the tag as string 4). Both values are 32 bytes,
    /// so swapping the string keeps every length and offset of the real table.
    #[test]
    fn the_azure_tag_in_a_real_hyper_v_table_is_found() {
        let serial = b"1519-7810-4472-8775-7272-8851-12";
        let mut table = HYPERV_TABLE.to_vec();
        let chassis = 250; // the type 3 structure's offset in this table
        assert_eq!(table[chassis], CHASSIS);
        let strings = chassis + usize::from(table[chassis + 1]);
        let fourth = strings + "Microsoft Corporation\0".len() + "7.0\0".len() + serial.len() + 1;
        assert_eq!(&table[fourth..fourth + 32], serial);
        table[fourth..fourth + 32].copy_from_slice(AZURE.as_bytes());
        assert_eq!(chassis_asset_tag(&rsmb(&table)).as_deref(), Some(AZURE));
    }

    #[test]
    fn a_real_table_whose_chassis_names_a_missing_string_has_no_tag() {
        // The Surface's chassis says "asset tag: string 3" but carries only two strings.
        assert_eq!(&SURFACE_RSMB[..4], [0, 3, 2, 0]);
        assert_eq!(chassis_asset_tag(SURFACE_RSMB), None);
        let chassis = structures(&SURFACE_RSMB[RAW_HEADER..])
            .find(|s| s.kind == CHASSIS)
            .unwrap();
        assert_eq!(chassis.formatted[ASSET_TAG_OFFSET], 3);
        assert_eq!(chassis.string(1).as_deref(), Some("Microsoft Corporation"));
        assert_eq!(chassis.string(2).as_deref(), Some("023078193757"));
        assert_eq!(
            structures(&SURFACE_RSMB[RAW_HEADER..]).last().unwrap().kind,
            END_OF_TABLE
        );
    }

    #[test]
    fn truncated_and_hostile_buffers_give_none_without_panicking() {
        let raw = rsmb(HYPERV_TABLE);
        for cut in [0, 3, 8, 9, 12, 250, 260, 300, 340, 360] {
            assert_eq!(chassis_asset_tag(&raw[..cut]), None, "cut at {cut}");
        }
        // A header that claims more than there is: the table is read as far as it goes.
        let mut long = raw.clone();
        long[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(chassis_asset_tag(&long).is_some());
        // A structure length below the header size, or running past the end.
        assert_eq!(table_chassis_asset_tag(&[3, 2, 0, 0, 0, 0]), None);
        assert_eq!(table_chassis_asset_tag(&[3, 200, 0, 0, 0, 0]), None);
        // A chassis too short to have an asset tag field, and one with string 0 ("none").
        assert_eq!(table_chassis_asset_tag(&[3, 8, 0, 0, 1, 3, 0, 0, b'x', 0, 0]), None);
        assert_eq!(table_chassis_asset_tag(&[3, 9, 0, 0, 1, 3, 0, 0, 0, b'x', 0, 0]), None);
    }
}

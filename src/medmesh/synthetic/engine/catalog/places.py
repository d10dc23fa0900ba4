"""US states (2020 Census population, millions), an area code each, and a few cities with ZIP
codes that really belong to them, so a generated address's city, state and ZIP agree.
Street names are generic; house numbers are random, so addresses are not real ones."""

from __future__ import annotations

# fmt: off
#: code -> (name, population in millions, area code, ((city, (ZIP, ...)), ...))
STATES: dict[str, tuple[str, float, str, tuple[tuple[str, tuple[str, ...]], ...]]] = {
    "AL": ("Alabama", 5.02, "205", (("Birmingham", ("35203", "35205", "35209")), ("Montgomery", ("36104", "36106")), ("Huntsville", ("35801", "35806")))),
    "AK": ("Alaska", 0.73, "907", (("Anchorage", ("99501", "99503", "99508")), ("Fairbanks", ("99701", "99709")), ("Juneau", ("99801",)))),
    "AZ": ("Arizona", 7.15, "602", (("Phoenix", ("85003", "85004", "85016")), ("Tucson", ("85701", "85705", "85719")), ("Mesa", ("85201", "85203")))),
    "AR": ("Arkansas", 3.01, "501", (("Little Rock", ("72201", "72202", "72205")), ("Fayetteville", ("72701", "72703")), ("Fort Smith", ("72901", "72903")))),
    "CA": ("California", 39.54, "213", (("Los Angeles", ("90012", "90017", "90026")), ("San Diego", ("92101", "92103", "92110")), ("San Jose", ("95112", "95113")), ("San Francisco", ("94102", "94110", "94117")), ("Sacramento", ("95814", "95816")))),
    "CO": ("Colorado", 5.77, "303", (("Denver", ("80202", "80203", "80205")), ("Colorado Springs", ("80903", "80909")), ("Aurora", ("80010", "80012")))),
    "CT": ("Connecticut", 3.61, "860", (("Hartford", ("06103", "06106")), ("New Haven", ("06510", "06511")), ("Stamford", ("06901", "06902")))),
    "DE": ("Delaware", 0.99, "302", (("Wilmington", ("19801", "19802", "19805")), ("Dover", ("19901", "19904")), ("Newark", ("19711",)))),
    "DC": ("District of Columbia", 0.69, "202", (("Washington", ("20001", "20002", "20009", "20010")),)),
    "FL": ("Florida", 21.54, "305", (("Miami", ("33125", "33130", "33132")), ("Orlando", ("32801", "32803", "32806")), ("Tampa", ("33602", "33606")), ("Jacksonville", ("32202", "32204", "32207")))),
    "GA": ("Georgia", 10.71, "404", (("Atlanta", ("30303", "30308", "30312")), ("Savannah", ("31401", "31404")), ("Augusta", ("30901", "30904")))),
    "HI": ("Hawaii", 1.46, "808", (("Honolulu", ("96813", "96814", "96815")), ("Hilo", ("96720",)), ("Kailua", ("96734",)))),
    "ID": ("Idaho", 1.84, "208", (("Boise", ("83702", "83704", "83706")), ("Nampa", ("83651", "83686")), ("Idaho Falls", ("83401", "83402")))),
    "IL": ("Illinois", 12.81, "312", (("Chicago", ("60601", "60607", "60614", "60622")), ("Springfield", ("62701", "62704")), ("Peoria", ("61602", "61604")))),
    "IN": ("Indiana", 6.79, "317", (("Indianapolis", ("46202", "46204", "46220")), ("Fort Wayne", ("46802", "46805")), ("Evansville", ("47708", "47714")))),
    "IA": ("Iowa", 3.19, "515", (("Des Moines", ("50309", "50310", "50312")), ("Cedar Rapids", ("52401", "52402")), ("Iowa City", ("52240", "52245")))),
    "KS": ("Kansas", 2.94, "316", (("Wichita", ("67202", "67203", "67208")), ("Topeka", ("66603", "66604")), ("Overland Park", ("66204", "66210")))),
    "KY": ("Kentucky", 4.51, "502", (("Louisville", ("40202", "40204", "40205")), ("Lexington", ("40507", "40502")), ("Bowling Green", ("42101", "42103")))),
    "LA": ("Louisiana", 4.66, "504", (("New Orleans", ("70112", "70115", "70119")), ("Baton Rouge", ("70801", "70802", "70808")), ("Shreveport", ("71101", "71104")))),
    "ME": ("Maine", 1.36, "207", (("Portland", ("04101", "04102", "04103")), ("Bangor", ("04401",)), ("Lewiston", ("04240",)))),
    "MD": ("Maryland", 6.18, "410", (("Baltimore", ("21201", "21202", "21218")), ("Annapolis", ("21401", "21403")), ("Frederick", ("21701", "21702")))),
    "MA": ("Massachusetts", 7.03, "617", (("Boston", ("02108", "02114", "02116", "02130")), ("Worcester", ("01602", "01604", "01609")), ("Springfield", ("01103", "01108")))),
    "MI": ("Michigan", 10.08, "313", (("Detroit", ("48201", "48202", "48226")), ("Grand Rapids", ("49503", "49504")), ("Lansing", ("48906", "48912")), ("Ann Arbor", ("48103", "48104")))),
    "MN": ("Minnesota", 5.71, "612", (("Minneapolis", ("55401", "55403", "55408")), ("Saint Paul", ("55101", "55102", "55105")), ("Rochester", ("55901", "55902")))),
    "MS": ("Mississippi", 2.96, "601", (("Jackson", ("39201", "39202", "39206")), ("Gulfport", ("39501", "39503")), ("Hattiesburg", ("39401", "39402")))),
    "MO": ("Missouri", 6.15, "314", (("Saint Louis", ("63101", "63104", "63110")), ("Kansas City", ("64105", "64106", "64111")), ("Springfield", ("65802", "65804")))),
    "MT": ("Montana", 1.08, "406", (("Billings", ("59101", "59102")), ("Missoula", ("59801", "59802")), ("Helena", ("59601",)))),
    "NE": ("Nebraska", 1.96, "402", (("Omaha", ("68102", "68105", "68131")), ("Lincoln", ("68502", "68508", "68510")), ("Grand Island", ("68801", "68803")))),
    "NV": ("Nevada", 3.10, "702", (("Las Vegas", ("89101", "89102", "89104")), ("Reno", ("89501", "89502", "89509")), ("Henderson", ("89002", "89014")))),
    "NH": ("New Hampshire", 1.38, "603", (("Manchester", ("03101", "03102", "03104")), ("Nashua", ("03060", "03062")), ("Concord", ("03301",)))),
    "NJ": ("New Jersey", 9.29, "973", (("Newark", ("07102", "07103", "07104")), ("Jersey City", ("07302", "07304", "07306")), ("Trenton", ("08608", "08611")))),
    "NM": ("New Mexico", 2.12, "505", (("Albuquerque", ("87102", "87106", "87108")), ("Santa Fe", ("87501", "87505")), ("Las Cruces", ("88001", "88005")))),
    "NY": ("New York", 20.20, "212", (("New York", ("10001", "10011", "10025", "10027")), ("Brooklyn", ("11201", "11215", "11226")), ("Buffalo", ("14201", "14209", "14214")), ("Rochester", ("14604", "14607")), ("Albany", ("12203", "12206")))),
    "NC": ("North Carolina", 10.44, "919", (("Charlotte", ("28202", "28203", "28205")), ("Raleigh", ("27601", "27603", "27608")), ("Greensboro", ("27401", "27403")), ("Durham", ("27701", "27705")))),
    "ND": ("North Dakota", 0.78, "701", (("Fargo", ("58102", "58103")), ("Bismarck", ("58501", "58503")), ("Grand Forks", ("58201", "58203")))),
    "OH": ("Ohio", 11.80, "614", (("Columbus", ("43201", "43205", "43215")), ("Cleveland", ("44102", "44106", "44113")), ("Cincinnati", ("45202", "45206", "45219")), ("Toledo", ("43604", "43607")))),
    "OK": ("Oklahoma", 3.96, "405", (("Oklahoma City", ("73102", "73103", "73106")), ("Tulsa", ("74103", "74104", "74105")), ("Norman", ("73069", "73071")))),
    "OR": ("Oregon", 4.24, "503", (("Portland", ("97201", "97205", "97214")), ("Eugene", ("97401", "97403")), ("Salem", ("97301", "97302")))),
    "PA": ("Pennsylvania", 13.00, "215", (("Philadelphia", ("19103", "19104", "19107", "19147")), ("Pittsburgh", ("15213", "15219", "15222")), ("Allentown", ("18101", "18102")), ("Harrisburg", ("17101", "17102")))),
    "RI": ("Rhode Island", 1.10, "401", (("Providence", ("02903", "02906", "02908")), ("Warwick", ("02886", "02888")), ("Cranston", ("02910", "02920")))),
    "SC": ("South Carolina", 5.12, "803", (("Columbia", ("29201", "29203", "29205")), ("Charleston", ("29401", "29403", "29407")), ("Greenville", ("29601", "29605")))),
    "SD": ("South Dakota", 0.89, "605", (("Sioux Falls", ("57103", "57104", "57105")), ("Rapid City", ("57701", "57702")), ("Aberdeen", ("57401",)))),
    "TN": ("Tennessee", 6.91, "615", (("Nashville", ("37203", "37206", "37208")), ("Memphis", ("38103", "38104", "38111")), ("Knoxville", ("37902", "37917")), ("Chattanooga", ("37402", "37403")))),
    "TX": ("Texas", 29.15, "512", (("Houston", ("77002", "77004", "77006", "77019")), ("San Antonio", ("78205", "78207", "78212")), ("Dallas", ("75201", "75204", "75206")), ("Austin", ("78701", "78702", "78704")), ("El Paso", ("79901", "79902")))),
    "UT": ("Utah", 3.27, "801", (("Salt Lake City", ("84101", "84102", "84105")), ("Provo", ("84601", "84604")), ("Ogden", ("84401", "84403")))),
    "VT": ("Vermont", 0.64, "802", (("Burlington", ("05401", "05408")), ("Rutland", ("05701",)), ("Montpelier", ("05602",)))),
    "VA": ("Virginia", 8.63, "804", (("Richmond", ("23219", "23220", "23223")), ("Virginia Beach", ("23451", "23452", "23454")), ("Norfolk", ("23505", "23507", "23510")))),
    "WA": ("Washington", 7.71, "206", (("Seattle", ("98101", "98103", "98105", "98122")), ("Spokane", ("99201", "99202", "99205")), ("Tacoma", ("98402", "98403", "98405")))),
    "WV": ("West Virginia", 1.79, "304", (("Charleston", ("25301", "25302")), ("Huntington", ("25701", "25703")), ("Morgantown", ("26501", "26505")))),
    "WI": ("Wisconsin", 5.89, "414", (("Milwaukee", ("53202", "53204", "53212")), ("Madison", ("53703", "53704", "53711")), ("Green Bay", ("54301", "54302")))),
    "WY": ("Wyoming", 0.58, "307", (("Cheyenne", ("82001", "82007")), ("Casper", ("82601", "82604")), ("Laramie", ("82070", "82072")))),
}

STREET_NAMES: tuple[str, ...] = (
    "Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park",
    "Walnut", "Spring", "North", "Ridge", "Church", "Willow", "Mill", "Sunset", "Railroad",
    "Jackson", "Cherry", "Highland", "Lincoln", "Franklin", "River", "Meadow", "Forest",
    "Center", "Chestnut", "Jefferson", "Madison", "Union", "Valley", "Birch", "Sycamore",
    "Hickory", "Adams", "Spruce", "Dogwood", "Magnolia", "Laurel", "Prospect", "Grove",
    "Orchard", "Summit", "Poplar", "Locust", "Bridge", "School", "Garden",
)
STREET_SUFFIXES: tuple[str, ...] = ("St", "Ave", "Rd", "Dr", "Ln", "Blvd", "Ct", "Way", "Pl")
# fmt: on

STATE_CODES: frozenset[str] = frozenset(STATES)

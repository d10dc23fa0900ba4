"""Name frequency lists, compact: SSA baby-name ranks by birth era and the 2010 Census surname
counts (thousands of people). First names are drawn with weights falling with rank, so common
names are common without storing every count."""

from __future__ import annotations

# fmt: off
#: (born before this year, male names, female names) in SSA rank order.
FIRST_NAMES_BY_ERA: tuple[tuple[int, tuple[str, ...], tuple[str, ...]], ...] = (
    (1965,
     ("James", "Robert", "John", "William", "Richard", "David", "Charles", "Thomas", "Michael",
      "Ronald", "Larry", "Donald", "Joseph", "Gary", "George", "Kenneth", "Paul", "Edward",
      "Jerry", "Dennis", "Frank", "Raymond", "Harold", "Walter", "Roger", "Arthur", "Gerald",
      "Carl", "Henry", "Jose"),
     ("Mary", "Patricia", "Linda", "Barbara", "Carol", "Sandra", "Nancy", "Sharon", "Judith",
      "Susan", "Betty", "Shirley", "Dorothy", "Margaret", "Joyce", "Donna", "Brenda", "Janet",
      "Karen", "Carolyn", "Judy", "Helen", "Deborah", "Joan", "Ruth", "Martha", "Diane",
      "Frances", "Virginia", "Maria")),
    (1995,
     ("Michael", "Christopher", "Jason", "David", "James", "John", "Robert", "Brian",
      "Matthew", "Joseph", "Daniel", "William", "Kevin", "Eric", "Jeffrey", "Joshua", "Steven",
      "Mark", "Scott", "Timothy", "Anthony", "Andrew", "Thomas", "Richard", "Ryan", "Jonathan",
      "Justin", "Juan", "Carlos", "Luis"),
     ("Jennifer", "Jessica", "Amanda", "Ashley", "Sarah", "Melissa", "Michelle", "Kimberly",
      "Lisa", "Stephanie", "Elizabeth", "Nicole", "Heather", "Amy", "Angela", "Rebecca",
      "Laura", "Emily", "Rachel", "Christina", "Tiffany", "Julie", "Erin", "Megan", "Kelly",
      "Crystal", "Maria", "Samantha", "Andrea", "Lauren")),
    (9999,
     ("Jacob", "Michael", "Joshua", "Matthew", "Ethan", "Andrew", "Daniel", "William", "Noah",
      "Liam", "Alexander", "Anthony", "Christopher", "Tyler", "Jayden", "Elijah", "Logan",
      "Mason", "Benjamin", "Aiden", "Lucas", "Oliver", "James", "Sebastian", "Mateo",
      "Gabriel", "Isaac", "Nathan", "Samuel", "David"),
     ("Emily", "Emma", "Madison", "Olivia", "Isabella", "Sophia", "Abigail", "Ava", "Hannah",
      "Ashley", "Elizabeth", "Chloe", "Mia", "Charlotte", "Amelia", "Harper", "Evelyn",
      "Sarah", "Alexis", "Samantha", "Grace", "Natalie", "Ella", "Avery", "Sofia", "Camila",
      "Victoria", "Zoe", "Lily", "Aaliyah")),
)

#: 2010 Census surnames, (surname, thousands of people).
SURNAMES: tuple[tuple[str, int], ...] = (
    ("Smith", 2442), ("Johnson", 1932), ("Williams", 1625), ("Brown", 1437), ("Jones", 1425),
    ("Miller", 1127), ("Davis", 1116), ("Wilson", 801), ("Anderson", 784), ("Taylor", 751),
    ("Thomas", 751), ("Moore", 724), ("Jackson", 708), ("Martin", 702), ("Lee", 693),
    ("Thompson", 664), ("White", 660), ("Harris", 624), ("Clark", 562), ("Lewis", 557),
    ("Robinson", 548), ("Walker", 523), ("Young", 484), ("Allen", 482), ("King", 465),
    ("Wright", 458), ("Scott", 439), ("Hill", 434), ("Green", 430), ("Adams", 427),
    ("Baker", 420), ("Nelson", 424), ("Hall", 408), ("Campbell", 371), ("Mitchell", 368),
    ("Carter", 362), ("Roberts", 350), ("Phillips", 314), ("Evans", 304), ("Turner", 303),
    ("Parker", 283), ("Collins", 266), ("Edwards", 264), ("Stewart", 262), ("Morris", 260),
    ("Murphy", 260), ("Cook", 257), ("Rogers", 257), ("Morgan", 238), ("Cooper", 235),
    ("Peterson", 235), ("Bailey", 233), ("Reed", 230), ("Kelly", 228), ("Howard", 226),
    ("Cox", 219), ("Ward", 219), ("Richardson", 216), ("Watson", 215), ("Brooks", 214),
    ("Wood", 213), ("James", 213), ("Bennett", 207), ("Gray", 206), ("Hughes", 195),
    ("Price", 193), ("Sanders", 193), ("Myers", 189), ("Long", 189), ("Ross", 189),
    ("Foster", 188), ("Powell", 184), ("Jenkins", 184), ("Perry", 183), ("Russell", 182),
    ("Sullivan", 180), ("Bell", 180), ("Coleman", 176), ("Butler", 174), ("Henderson", 173),
    ("Barnes", 173), ("Fisher", 163), ("Graham", 162), ("Hamilton", 159), ("Wallace", 157),
    ("Griffin", 155), ("West", 155), ("Cole", 153), ("Hayes", 152), ("Bryant", 150),
    ("Ellis", 149), ("Stevens", 148), ("Murray", 147), ("Ford", 147), ("Marshall", 146),
    ("Owens", 146), ("McDonald", 145), ("Harrison", 145), ("Ruiz", 145), ("Kennedy", 144),
)
HISPANIC_SURNAMES: tuple[tuple[str, int], ...] = (
    ("Garcia", 1166), ("Rodriguez", 1095), ("Martinez", 1060), ("Hernandez", 1044),
    ("Lopez", 874), ("Gonzalez", 841), ("Perez", 464), ("Sanchez", 441), ("Ramirez", 389),
    ("Torres", 325), ("Flores", 313), ("Rivera", 309), ("Gomez", 264), ("Diaz", 252),
    ("Cruz", 210), ("Morales", 210), ("Reyes", 205), ("Gutierrez", 190), ("Ortiz", 186),
    ("Chavez", 175), ("Ramos", 174), ("Castillo", 149), ("Jimenez", 149), ("Vasquez", 146),
    ("Moreno", 142), ("Romero", 139), ("Alvarez", 139), ("Mendoza", 136), ("Herrera", 131),
    ("Medina", 129), ("Aguilar", 127), ("Vargas", 125), ("Castro", 123), ("Guzman", 120),
)
ASIAN_SURNAMES: tuple[tuple[str, int], ...] = (
    ("Nguyen", 437), ("Kim", 143), ("Patel", 146), ("Wang", 103), ("Chen", 104), ("Li", 93),
    ("Tran", 160), ("Le", 121), ("Pham", 73), ("Park", 99), ("Liu", 64), ("Zhang", 55),
    ("Huang", 52), ("Yang", 72), ("Lin", 56), ("Singh", 86), ("Shah", 45), ("Choi", 41),
    ("Wu", 50), ("Chang", 75), ("Santos", 87), ("Reyes", 60), ("Cruz", 40), ("Tanaka", 16),
)
# fmt: on

"""The words and numbers the synthetic traffic is made of: regions, names, celebrities, user agents, networks, hours.

Declarative data only; `population` builds people and actors from it and `scenarios` plans what they do.
"""

from __future__ import annotations

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
LOOKUP = "/api/v1/healthkit/lookup?"

# The labels of what is planted: attacks to catch, benign look-alikes and partners to leave alone.
ATTACK_SCENARIOS = (
    "burst_random_ids",
    "low_and_slow",
    "suffix_brute_force",
    "sequential_scan",
    "celebrity_spray",
    "name_only_spray",
    "account_farm",
    "distributed_campaign",
    "split_campaign_subnet",
    "split_campaign_spread",
    "split_device_farm",
)
# The group cases (generator.campaigns): campaigns whose every account stays below every per-account
# threshold, and the benign groups that share their links but not their behaviour.
GROUP_ATTACK_SCENARIOS = ("split_campaign_subnet", "split_campaign_spread", "split_device_farm")
GROUP_BENIGN_SCENARIOS = ("office", "fan_club", "family_tablet", "school_room")
BENIGN_SCENARIOS = ("ordinary_citizen", "fan", "cgnat", "nat_office", "anonymous", *GROUP_BENIGN_SCENARIOS)
PARTNER_SCENARIO = "verification_partner"

# Volumes at scale 1.0 (benign, multiplied by scale) tuned for ~20k lines/day in total.
CITIZENS = 6_300
FANS = 150
CGNAT_CLIENTS_PER_IP = 300
OFFICE_EMPLOYEES = 60
ANONYMOUS = 300
PARTNER_LOOKUPS_PER_DAY = 3_000
BACKGROUND_PER_DAY = 6_000

REGIONS = (
    "110101",
    "110105",
    "110108",
    "120101",
    "210102",
    "310104",
    "310115",
    "320102",
    "330106",
    "350203",
    "370102",
    "420106",
    "430104",
    "440106",
    "440305",
    "500103",
    "510107",
    "610113",
)
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡"
    "贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段"
)
GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚华玉萍红玲芬燕彬鹏辉宇浩然子轩梓涵欣怡一诺"
    "雨桐晨博思远心月山立金文大小力石林嘉俊建国志梅佳琪婷雪峰海波晓东振宁慧颖"
)

# Fictional celebrities (invented names, not real people): name, region, birth date, sequence.
CELEBRITIES = (
    ("林星澜", "310104", "19880312", 271),
    ("顾辰逸", "110105", "19910724", 135),
    ("沈清歌", "330106", "19950218", 462),
    ("苏墨言", "320102", "19870905", 319),
    ("叶疏桐", "440305", "19990111", 88),
    ("陆云岫", "510107", "19931130", 604),
    ("温叙白", "350203", "19850616", 757),
    ("韩霁月", "210102", "19970403", 226),
    ("许南乔", "430104", "20000827", 940),
    ("程砚舟", "120101", "19820129", 511),
    ("秦朗月", "610113", "19940707", 372),
    ("萧北屿", "440106", "19960314", 19),
    ("宋知意", "370102", "20011009", 684),
    ("唐岑曦", "500103", "19891222", 203),
    ("夏予安", "420106", "19980530", 845),
    ("白景行", "110108", "19830808", 97),
    ("方静姝", "310115", "19920416", 158),
    ("贺星野", "110101", "20020101", 733),
    ("孟听澜", "330106", "19900925", 426),
    ("蒋沐阳", "440305", "19860302", 611),
    ("谢云帆", "510107", "19971118", 377),
    ("姚书瑶", "320102", "19930611", 248),
    ("傅砚川", "110105", "19840720", 519),
    ("季雨眠", "350203", "20000214", 866),
    ("黎望舒", "440106", "19950905", 302),
    ("邵青禾", "430104", "19991228", 148),
    ("乔语棠", "310104", "19960123", 590),
    ("钟慕白", "420106", "19881015", 41),
    ("严子衿", "370102", "19940301", 262),
    ("周屿森", "610113", "19910519", 915),
    ("杜若晴", "500103", "19970606", 470),
    ("楚嘉言", "120101", "19870211", 337),
    ("向晚棠", "210102", "20010717", 682),
    ("柏清和", "110108", "19850404", 159),
    ("俞思淼", "330106", "19981102", 804),
    ("郁景澄", "440305", "19921207", 573),
    ("凌霄羽", "510107", "19890826", 213),
    ("纪寒川", "320102", "19830114", 999),
    ("安以沫", "310115", "20020909", 624),
    ("裴星河", "110101", "19900310", 386),
)

APP_UAS = (
    "HealthKit/5.2.1 (iPhone; iOS 17.4.1; Scale/3.00)",
    "HealthKit/5.2.1 (iPhone; iOS 16.7.2; Scale/2.00)",
    "HealthKit/5.2.0 (Android 13; Xiaomi 2211133C)",
    "HealthKit/5.2.1 (Android 14; HUAWEI ALN-AL00)",
    "HealthKit/5.1.9 (Android 12; OPPO PGJM10)",
    "HealthKit/5.2.1 (Android 13; vivo V2241A)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Mobile/15E148 MicroMessenger/8.0.47(0x18002f2f) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (Linux; Android 13; V2241A; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0"
    " Chrome/116.0.0.0 Mobile Safari/537.36 MicroMessenger/8.0.47.2560(0x28002F35) WeChat/arm64",
)
BROWSER_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; M2012K11AC) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.3 Mobile/15E148 Safari/604.1",
)
CAMPAIGN_UA = "Dalvik/2.1.0 (Linux; U; Android 7.1.2; SM-G9650 Build/N2G48H) hkq/0.9.3"
# The sellers' client programs of the below-threshold campaigns, one per campaign.
SELLER_UAS = (
    "Dalvik/2.1.0 (Linux; U; Android 9; MI 8 Build/PKQ1.180729.001) xq-lite/2.4",
    "okhttp/3.12.13 hkbatch/1.1",
)
OFFICE_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0"
    " Safari/537.36 Edg/124.0.2478.51"
)
SCHOOL_UA = (
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36"
)
# Public-looking /16s for mobile and home users; the /24 campaign is drawn from elsewhere.
CITIZEN_NETS = ("36.112", "39.144", "111.30", "112.96", "117.136", "120.229", "183.14", "223.104")
# More carrier /16s, drawn from only once the first eight are half used (about --scale 35 and up), so
# smaller scales keep their byte-identical output and --scale 100 (about 14M lines) finds enough addresses.
MORE_CITIZEN_NETS = (
    "14.16",
    "27.184",
    "42.48",
    "58.16",
    "59.32",
    "60.160",
    "101.80",
    "106.80",
    "113.64",
    "115.192",
    "119.128",
    "123.112",
    "124.64",
    "140.206",
    "171.8",
    "175.0",
    "180.96",
    "182.32",
    "210.12",
    "211.136",
    "218.0",
    "220.160",
    "221.192",
    "222.128",
)
CAMPAIGN_NETS = (45, 103, 185)

# Local (UTC+8) hour weights of consumer traffic; index = local hour.
_LOCAL_WEIGHTS = (2, 1, 1, 1, 1, 1, 2, 4, 7, 8, 8, 8, 7, 7, 8, 8, 8, 7, 7, 8, 9, 9, 7, 4)
CONSUMER_HOURS = tuple(h for h in range(24) for _ in range(_LOCAL_WEIGHTS[(h + 8) % 24]))
OFFICE_HOURS = tuple(h for h in range(24) if 9 <= (h + 8) % 24 < 18)
DAYTIME_HOURS = tuple(h for h in range(24) if 8 <= (h + 8) % 24 < 23)
